"""`python -m tuning.search`: the whole search, from data to a registered champion.

Example:
    python -m tuning.search --smoke-test
    python -m tuning.search --num-samples 20 --max-epochs 10 --tracking-uri http://127.0.0.1:5000
    python -m tuning.search --resume --name fmnist-search-20261126-103223
"""

from __future__ import annotations

import sys

from tuning import cli, library_output


def main(argv: list[str] | None = None) -> int:
    """Parse the flags, check every input, then search; a bad input ends with one line and exit code 2."""
    command = cli.parse(argv)
    library_output.quiet_environment()
    from tuning import driver

    library_output.quiet_loggers()

    try:
        search = driver.prepare(command)
    except driver.INPUT_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return driver.run(search)


if __name__ == "__main__":
    sys.exit(main())
