"""`python -m fmnist`: find, validate and cache the dataset; print its size and digest."""

from __future__ import annotations

import sys
import time

from fmnist.command_line import OneLineErrorParser
from fmnist.data import load
from fmnist.errors import DatasetError
from fmnist.locations import DATA_DIR_HELP, resolve_data_dir


def main(argv: list[str] | None = None) -> int:
    parser = OneLineErrorParser(prog="python -m fmnist", description=__doc__)
    parser.add_argument("--data-dir", help=DATA_DIR_HELP)
    parser.add_argument("--cache-dir", help="where the parsed .npz goes (default: <data-dir>/.cache)")
    parser.add_argument("--no-download", action="store_true", help="fail instead of downloading")
    arguments = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        dataset = load(arguments.data_dir, cache_dir=arguments.cache_dir, download=not arguments.no_download)
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    print(
        f"{resolve_data_dir(arguments.data_dir)}: {len(dataset.train)} training and {len(dataset.test)} test "
        f"images, digest {dataset.digest[:16]}, loaded in {elapsed:.3f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
