"""Cold (parse + validate + cache) and warm (from the .npz cache) load times of the full dataset.

Usage: python bench/data_loading.py [DATA_DIR] [--repeats N]
Measures each layout found in DATA_DIR (default: $FMNIST_DATA_DIR or ./data) in one run and prints
the figures and the cold/warm ratio. Writes docs/results/data_loading.json; the goal is a warm load <= 0.3 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import results

from fmnist import data
from fmnist.locations import DATA_DIR_HELP, resolve_data_dir

WARM_GOAL_S = 0.3
LAYOUTS = {"kaggle-csv.gz": ("fashion-mnist_train.csv", "fashion-mnist_test.csv"),
           "idx.gz": tuple(data.IDX_FILES.values())}


def _timed_load(directory: Path, cache: Path) -> float:
    started = time.perf_counter()
    data.load(directory, cache_dir=cache, download=False)
    return time.perf_counter() - started


def markdown_table(record: dict[str, Any]) -> str:
    """The docs' table of a data-loading results file: each layout's cold and warm load. docs/benchmarks.md holds it
    as printed (`--table FILE`), and a fast test holds the two together."""
    lines = ["| layout | cold (parse, validate, cache) | warm median (from the cache) | cold / warm |", "|---|---|---|---|"]
    lines += [f"| {row['layout']} | {row['cold_s']:.3f} s | {row['warm_median_s']:.3f} s (n={row['repeats']}) | "
              f"{row['cold_s'] / row['warm_median_s']:.0f}x |" for row in record["figures"]["layouts"]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", nargs="?", default=str(resolve_data_dir()), help=DATA_DIR_HELP)
    parser.add_argument("--repeats", type=int, default=5)
    results.add_table_option(parser)
    options = parser.parse_args()
    if options.table:
        results.print_table(options.table, markdown_table)
        return
    source = Path(options.data_dir)
    rows = []
    for layout, names in LAYOUTS.items():
        with tempfile.TemporaryDirectory() as scratch:
            directory, cache = Path(scratch) / "data", Path(scratch) / "cache"
            directory.mkdir()
            for name in names:
                shutil.copy(source / f"{name}.gz", directory)
            cold = _timed_load(directory, cache)
            warm = [_timed_load(directory, cache) for _ in range(options.repeats)]
            median_warm = statistics.median(warm)
            print(f"{layout:14s} cold {cold:6.3f} s   warm median {median_warm:6.3f} s "
                  f"(min {min(warm):.3f}, max {max(warm):.3f}, n={len(warm)})   cold/warm {cold / median_warm:5.0f}x")
            rows.append({"layout": layout, "cold_s": cold, "warm_median_s": median_warm, "warm_min_s": min(warm),
                         "warm_max_s": max(warm), "repeats": len(warm)})
    checks = [(f"{row['layout']}: warm load <= {WARM_GOAL_S} s", row["warm_median_s"] <= WARM_GOAL_S) for row in rows]
    print(f"results: {results.write('data_loading', {'layouts': rows}, checks)}")


if __name__ == "__main__":
    main()
