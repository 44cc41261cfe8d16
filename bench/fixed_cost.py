"""A search's fixed cost, this checkout against an earlier commit, in one run.

Runs the same one-trial, one-epoch search (`python -m tuning.search`, embedded defaults, the original CNN) alternately
from this checkout and from a git worktree of `--against`, `--pairs` times, each in a fresh folder (so
each pays MLflow's SQLite schema, as a first search in a folder does). For each run it prints the wall
time, the trial's epoch (Tune's `time_this_iter_s`: the trial's imports, model build and the epoch) and
the fixed cost, the wall time minus that epoch (target <= 10 s); then the medians and their difference.
Alternating the two sides spreads this shared host's slow spells over both.

Example:
    python bench/fixed_cost.py --against 04afdce --pairs 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tuning.space import write_with_points

REPOSITORY = Path(__file__).resolve().parent.parent
FIXED_COST_TARGET_S = 10.0
SEARCH = ["--name", "fixed", "--train-size", "3000", "--num-samples", "1", "--max-epochs", "1",
          "--cpus-per-trial", "2", "--max-concurrent-trials", "1", "--seed", "0"]


def one_search(code: Path, space: Path) -> tuple[float, float]:
    """Wall time and the trial's epoch time of one search of `space` run from `code` (on PYTHONPATH, Ray's workers too)."""
    with tempfile.TemporaryDirectory(prefix="fixed-cost-") as folder:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "tuning.search", *SEARCH, "--config", str(space)], cwd=folder, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(code)})
        wall = time.perf_counter() - started
        (result_file,) = Path(folder, "results", "fixed").glob("train_cnn_*/result.json")
        return wall, json.loads(result_file.read_text().splitlines()[0])["time_this_iter_s"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", required=True, help="the earlier commit (any git revision)")
    parser.add_argument("--pairs", type=int, default=3)
    options = parser.parse_args()
    revision = subprocess.run(["git", "rev-parse", "--short", options.against], cwd=REPOSITORY, check=True,
                              capture_output=True, text=True).stdout.strip()
    fixed: dict[str, list[float]] = {"this checkout": [], revision: []}
    with tempfile.TemporaryDirectory(prefix="fixed-cost-against-") as scratch:
        earlier = Path(scratch) / "tree"
        original_first = write_with_points(Path(scratch) / "original_first.yaml", [{}])
        subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(earlier), revision], cwd=REPOSITORY, check=True)
        try:
            for _ in range(options.pairs):
                for side, code in ((revision, earlier), ("this checkout", REPOSITORY)):
                    wall, epoch = one_search(code, original_first)
                    fixed[side].append(wall - epoch)
                    print(f"{side:>14}: wall {wall:5.1f} s, trial epoch {epoch:5.1f} s, fixed cost {wall - epoch:5.1f} s", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(earlier)], cwd=REPOSITORY, check=True)
    now, before = statistics.median(fixed["this checkout"]), statistics.median(fixed[revision])
    print(f"median fixed cost: this checkout {now:.1f} s, {revision} {before:.1f} s, "
          f"difference {now - before:+.1f} s (target <= {FIXED_COST_TARGET_S:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
