"""Where a search runs and what the libraries print: Ray, quiet switches, one-line errors."""
