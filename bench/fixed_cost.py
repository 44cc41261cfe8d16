"""A search's fixed cost in one run: this checkout against an earlier commit, or against itself joining a running Ray.

Runs the same one-trial, one-epoch search (`python -m tuning.search`, embedded defaults, the original CNN) alternately
on two sides, `--pairs` times, each in a fresh folder (so each pays MLflow's SQLite schema, as a first search in a
folder does). The sides are this checkout and either a git worktree of `--against`, or (`--running-ray`) this
checkout again, joining a local Ray that the benchmark starts once (`ray start --head`) instead of starting and
stopping its own. For each run it prints the wall time, the trial's epoch (Tune's `time_this_iter_s`: the trial's
imports, model build and the epoch), the fixed cost (the wall time minus that epoch; target <= 10 s) and the time
outside training (the wall time minus the epoch's fit, validation and checkpoint, so the trial's imports and model
build count as fixed cost too); then the medians of both and their differences, written to
docs/results/fixed_cost.json. Alternating the two sides spreads this shared host's slow spells over both.

Examples:
    python bench/fixed_cost.py --against 04afdce --pairs 3
    python bench/fixed_cost.py --running-ray --ray-port 6390
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import results

from fmnist.locations import resolve_data_dir
from tuning.optimization.objective import TRIAL_NAME_PREFIX
from tuning.optimization.space import write_with_points
from tuning.runtime.cluster import ClusterError, local_head

REPOSITORY = Path(__file__).resolve().parent.parent
FIXED_COST_TARGET_S = 10.0
SEARCH = ["--name", "fixed", "--train-size", "3000", "--num-samples", "1", "--max-epochs", "1",
          "--cpus-per-trial", "2", "--max-concurrent-trials", "1", "--seed", "0"]


@dataclass(frozen=True)
class SearchTimes:
    """One search's wall time, its trial's epoch (Tune's `time_this_iter_s`) and the training in that epoch."""

    wall: float
    epoch: float
    training: float

    @property
    def fixed_cost(self) -> float:
        """The wall time outside the trial's epoch."""
        return self.wall - self.epoch

    @property
    def outside_training(self) -> float:
        """The wall time outside the epoch's fit, validation and checkpoint."""
        return self.wall - self.training


def one_search(code: Path, space: Path) -> SearchTimes:
    """The times of one search of `space` run from `code` (on PYTHONPATH, Ray's workers too)."""
    with tempfile.TemporaryDirectory(prefix="fixed-cost-") as folder:
        started = time.perf_counter()
        data = ["--data-dir", str(resolve_data_dir().resolve())]  # the search runs in a folder of its own
        subprocess.run([sys.executable, "-m", "tuning.search", *SEARCH, *data, "--config", str(space)], cwd=folder, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(code)})
        wall = time.perf_counter() - started
        (result_file,) = Path(folder, "results", "fixed").glob(f"{TRIAL_NAME_PREFIX}*/result.json")
        result = json.loads(result_file.read_text().splitlines()[0])
        training = result["time_fit_s"] + result["time_validation_s"] + result["time_checkpoint_s"]
        return SearchTimes(wall, result["time_this_iter_s"], training)


@contextlib.contextmanager
def worktree(revision: str, scratch: Path) -> Iterator[Path]:
    """A git worktree of `revision`, removed afterwards."""
    tree = scratch / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(tree), revision], cwd=REPOSITORY, check=True)
    try:
        yield tree
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPOSITORY, check=True)


def run_line(side: str, run: SearchTimes) -> str:
    """One search's times, as the benchmark prints them while it runs."""
    return (f"{side:>14}: wall {run.wall:5.1f} s, trial epoch {run.epoch:5.1f} s (training {run.training:4.1f} s), "
            f"fixed cost {run.fixed_cost:5.1f} s, outside training {run.outside_training:5.1f} s")


def median_lines(medians: dict[str, dict[str, float]], first: str, second: str) -> list[str]:
    """Each figure's median on both sides and their difference."""
    return [f"median {label}: {second} {by_side[second]:.1f} s, {first} {by_side[first]:.1f} s, difference "
            f"{by_side[second] - by_side[first]:+.1f} s (target <= {FIXED_COST_TARGET_S:.0f} s)"
            for label, by_side in medians.items()]


def markdown_table(record: dict[str, Any]) -> str:
    """The docs' block of a fixed-cost results file: the command, each run in the order it ran, then the medians, as
    the run printed them. docs/benchmarks.md holds it as printed (`--table FILE`), and a fast test holds the two
    together."""
    figures = record["figures"]
    first, second = figures["sides"]
    runs = {side: [SearchTimes(run["wall_s"], run["epoch_s"], run["training_s"]) for run in figures["runs"][side]]
            for side in (first, second)}
    lines = [f"$ {record['command']}"]
    for first_run, second_run in zip(runs[first], runs[second], strict=True):
        lines += [run_line(first, first_run), run_line(second, second_run)]
    return "\n".join(lines + median_lines(figures["medians"], first, second))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    other_side = parser.add_mutually_exclusive_group()
    other_side.add_argument("--against", help="the earlier commit (any git revision)")
    other_side.add_argument("--running-ray", action="store_true",
                            help="this checkout joining a running local Ray, against it starting its own")
    parser.add_argument("--ray-port", type=int, default=6390, help="the GCS port of the Ray that --running-ray starts")
    parser.add_argument("--pairs", type=int, default=3)
    results.add_table_option(parser)
    options = parser.parse_args()
    if options.table:
        results.print_table(options.table, markdown_table)
        return 0
    if not (options.against or options.running_ray):
        parser.error("one of --against REV or --running-ray is required")
    with tempfile.TemporaryDirectory(prefix="fixed-cost-against-") as scratch:
        original_first = write_with_points(Path(scratch) / "original_first.yaml", [{}])
        if options.running_ray:
            sides = {"own Ray": REPOSITORY, "running Ray": REPOSITORY}
            # A search without --address joins any running local Ray: the first side must run with none, so the
            # benchmark starts one for each run of the second side (its start is not counted: a user starts it once).
            try:
                times = alternate(sides, original_first, options.pairs, lambda: local_head(options.ray_port))
            except ClusterError as error:
                print(f"error: --ray-port {error}", file=sys.stderr)
                return 1
        else:
            revision = subprocess.run(["git", "rev-parse", "--short", options.against], cwd=REPOSITORY, check=True,
                                      capture_output=True, text=True).stdout.strip()
            with worktree(revision, Path(scratch)) as earlier:
                times = alternate({revision: earlier, "this checkout": REPOSITORY}, original_first, options.pairs)
    (first, second) = times
    figures: dict[str, Callable[[SearchTimes], float]] = {
        "fixed cost": lambda run: run.fixed_cost, "outside training": lambda run: run.outside_training,
    }
    medians = {label: {side: statistics.median(figure(run) for run in times[side]) for side in (first, second)}
               for label, figure in figures.items()}
    print("\n".join(median_lines(medians, first, second)))
    runs = {side: [{"wall_s": run.wall, "epoch_s": run.epoch, "training_s": run.training} for run in side_times]
            for side, side_times in times.items()}
    checks = [(f"{side}: median fixed cost <= {FIXED_COST_TARGET_S:.0f} s", value <= FIXED_COST_TARGET_S)
              for side, value in medians["fixed cost"].items()]
    print(f"results: {results.write('fixed_cost', {'sides': [first, second], 'runs': runs, 'medians': medians}, checks)}")
    return 0


def alternate(sides: dict[str, Path], space: Path, pairs: int,
              second_side_within: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
              ) -> dict[str, list[SearchTimes]]:
    """Each side's search times over `pairs` alternating searches; each run of the second side inside a new
    `second_side_within()`."""
    (first, first_code), (second, second_code) = sides.items()
    times: dict[str, list[SearchTimes]] = {first: [], second: []}

    def measure(side: str, code: Path) -> None:
        run = one_search(code, space)
        times[side].append(run)
        print(run_line(side, run), flush=True)

    for _ in range(pairs):
        measure(first, first_code)
        with second_side_within():
            measure(second, second_code)
    return times


if __name__ == "__main__":
    sys.exit(main())
