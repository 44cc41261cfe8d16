"""Warm start against cold start: wall time for a new search to reach an earlier search's best.

Runs three real searches on embedded defaults in a scratch folder, one after another:
  earlier  a cold search (seed 0): its best validation accuracy is the target;
  cold     the same search with another seed (1);
  warm     the same as cold, plus `--warm-start earlier`.
Prints, for cold and warm, the wall time from launch until one of its own trials reached the target
(warm-start trials copied from `earlier` do not count), and their ratio.

Example:
    python bench/warm_start.py --train-size 6000 --num-samples 12 --max-epochs 3
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOLERANCE = 1e-9


def run_search(workdir: Path, name: str, seed: int, options: argparse.Namespace, *extra: str) -> float:
    """Run one search to its end; returns the time.time() at launch."""
    launched = time.time()
    subprocess.run(
        [sys.executable, "-m", "tuning.search", "--name", name, "--seed", str(seed), "--train-size", str(options.train_size),
         "--num-samples", str(options.num_samples), "--max-epochs", str(options.max_epochs), *extra],
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-size", type=int, default=6000)
    parser.add_argument("--num-samples", type=int, default=12)
    parser.add_argument("--max-epochs", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="warm-start-bench-") as scratch:
        workdir = Path(scratch)
        earlier_launch = run_search(workdir, "earlier", 0, options)
        earlier = epoch_results(workdir, "earlier")
        target = max(result["val_accuracy"] for result in earlier)
        earlier_time = seconds_to_reach(earlier, target, earlier_launch)
        print(f"earlier search: best val_accuracy {target:.4f}, reached after {earlier_time:.0f} s "
              f"({options.num_samples} trials, <= {options.max_epochs} epochs, {options.train_size} images)", flush=True)
        times = {}
        for label, extra in (("cold", ()), ("warm", ("--warm-start", "earlier"))):
            launched = run_search(workdir, label, 1, options, *extra)
            results = epoch_results(workdir, label)
            times[label] = seconds_to_reach(results, target, launched)
            best = max(result["val_accuracy"] for result in results)
            reached = "never" if times[label] is None else f"after {times[label]:.0f} s"
            print(f"{label:>5} search (seed 1): best val_accuracy {best:.4f}; reached {target:.4f} {reached}; "
                  f"whole search {time.time() - launched:.0f} s", flush=True)
        if times["cold"] is not None and times["warm"] is not None:
            print(f"warm / cold time to the earlier best: {times['warm'] / times['cold']:.2f}")


if __name__ == "__main__":
    main()
