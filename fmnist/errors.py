"""The one exception type for bad dataset input."""

from __future__ import annotations


class DatasetError(ValueError):
    """A dataset file is missing or malformed; the message is one line naming the file."""
