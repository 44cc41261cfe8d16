"""Warm start against cold start: wall time for a new search to reach an earlier search's best.

Runs three real searches on embedded defaults in a scratch folder, one after another:
  earlier  a cold search (seed 0): its best validation accuracy is the target;
  cold     the same search with another seed (1);
  warm     the same as cold, plus `--warm-start earlier`.
Prints, for cold and warm, the wall time from launch until one of its own trials reached the target
(warm-start trials copied from `earlier` do not count), and their ratio; writes them to docs/results/warm_start.json.

Example:
    python bench/warm_start.py data --train-size 6000 --num-samples 12 --max-epochs 3
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import results

from fmnist.locations import DATA_DIR_HELP, resolve_data_dir

TOLERANCE = 1e-9


def run_search(workdir: Path, name: str, seed: int, options: argparse.Namespace, *extra: str) -> float:
    """Run one search to its end; returns the time.time() at launch."""
    launched = time.time()
    subprocess.run(
        [sys.executable, "-m", "tuning.search", "--name", name, "--seed", str(seed), "--data-dir", str(options.data_dir),
         "--train-size", str(options.train_size), "--num-samples", str(options.num_samples), "--max-epochs", str(options.max_epochs), *extra],
        cwd=workdir, check=True, stdout=subprocess.DEVNULL,
    )
    return launched


def epoch_results(workdir: Path, name: str) -> list[dict]:
    """Every epoch of every trial the search itself ran (Tune's result.json files)."""
    return [json.loads(line) for path in (workdir / "results" / name).glob("trial-*/result.json")
            for line in path.read_text().splitlines() if line.strip()]


def seconds_to_reach(results: list[dict], target: float, launched: float) -> float | None:
    """Seconds from launch to the first epoch at or above `target`, or None if never reached."""
    reached = [result["timestamp"] - launched for result in results if result["val_accuracy"] >= target - TOLERANCE]
    return min(reached) if reached else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path, nargs="?", default=resolve_data_dir(), help=DATA_DIR_HELP)
    parser.add_argument("--train-size", type=int, default=6000)
    parser.add_argument("--num-samples", type=int, default=12)
    parser.add_argument("--max-epochs", type=int, default=3)
    results.add_table_option(parser)
    options = parser.parse_args()
    if options.table:
        results.print_table(options.table, markdown_table)
        return 0
    options.data_dir = options.data_dir.resolve()  # the searches run in a scratch folder
    with tempfile.TemporaryDirectory(prefix="warm-start-bench-") as scratch:
        figures = measure(Path(scratch), options)
    checks = [("the warm search reaches the earlier best sooner than the cold one", figures["warm_over_cold"] is not None
               and figures["warm_over_cold"] < 1)]
    print("\n".join(report_lines(figures)))
    print(f"results: {results.write('warm_start', figures, checks)}")
    return 0


def measure(workdir: Path, options: argparse.Namespace) -> dict[str, Any]:
    """The earlier search's best and when it reached it, then each of cold and warm: its best, when it reached the
    earlier best and how long it ran."""
    earlier_launch = run_search(workdir, "earlier", 0, options)
    earlier = epoch_results(workdir, "earlier")
    target = max(result["val_accuracy"] for result in earlier)
    figures: dict[str, Any] = {"train_size": options.train_size, "num_samples": options.num_samples,
                               "max_epochs": options.max_epochs, "earlier_best": target,
                               "earlier_reached_s": seconds_to_reach(earlier, target, earlier_launch)}
    for label, extra in (("cold", ()), ("warm", ("--warm-start", "earlier"))):
        launched = run_search(workdir, label, 1, options, *extra)
        ended = time.time()
        own = epoch_results(workdir, label)
        figures[label] = {"best": max(result["val_accuracy"] for result in own),
                          "reached_s": seconds_to_reach(own, target, launched), "wall_s": ended - launched}
    cold, warm = figures["cold"]["reached_s"], figures["warm"]["reached_s"]
    figures["warm_over_cold"] = warm / cold if cold and warm is not None else None
    return figures


def report_lines(figures: dict[str, Any]) -> list[str]:
    """What the run prints: the earlier search, then the cold and the warm one, then the ratio."""
    lines = [(f"earlier search: best val_accuracy {figures['earlier_best']:.4f}, reached after "
             f"{figures['earlier_reached_s']:.0f} s ({figures['num_samples']} trials, <= {figures['max_epochs']} epochs, "
             f"{figures['train_size']} images)")]
    for label in ("cold", "warm"):
        run = figures[label]
        reached = "never" if run["reached_s"] is None else f"after {run['reached_s']:.0f} s"
        lines.append(f"{label:>5} search (seed 1): best val_accuracy {run['best']:.4f}; reached "
                     f"{figures['earlier_best']:.4f} {reached}; whole search {run['wall_s']:.0f} s")
    ratio = figures["warm_over_cold"]
    return lines + [f"warm / cold time to the earlier best: {'-' if ratio is None else f'{ratio:.2f}'}"]


def markdown_table(record: dict[str, Any]) -> str:
    """The docs' block of a warm-start results file, as the run printed it (`--table FILE`)."""
    return "\n".join([f"$ {record['command']}", *report_lines(record["figures"])])


if __name__ == "__main__":
    sys.exit(main())
