"""What a search costs beyond training: per-epoch overhead against bare Keras, and memory.

In one run, on the same data and the same 2 threads:
  bare      a plain Keras `fit` of the original CNN with its validation data, an epoch at a time;
  trial     `python -m tuning.search` with one trial of the same model (the default space with the original
            CNN as its first point; embedded defaults: Tune,
            MLflow in SQLite, TensorBoard, a checkpoint and the validation metrics every epoch).
Prints the median and the fastest epoch time of each (epochs after the first), where the trial's epochs
went (fit, validation, checkpoint and the rest of Tune's epoch time), and the two ratios. The
fastest epochs' ratio is the one checked (target <= 1.05: exit code 1 above it): this shared host's
noise (seconds in which no process of the run gets a CPU) only ever adds time, to either side. Then the peak
resident memory of the driver, of the trial processes and of the champion evaluator, sampled from /proc.
`--memory-run` adds a search with 2 concurrent trials on the full training data for the memory
targets (driver <= 1 GB, trial <= 1.5 GB).

Example:
    python bench/search_overhead.py --train-size 12000 --epochs 4 --memory-run
    python bench/search_overhead.py --train-size 0 --epochs 4      # full-length epochs, as a real search has
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Self

import results

from fmnist.locations import resolve_data_dir
from tuning.optimization.objective import STEP_KEY
from tuning.optimization.space import write_with_points

OVERHEAD_TARGET = 1.05
BARE_FIT = """
import json, os, sys, time
import keras, tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(2)
tf.config.threading.set_inter_op_parallelism_threads(2)
from fmnist.data import held_out_split, load
from fmnist.model import ModelConfig, build, one_hot
train_size, epochs = int(sys.argv[1]), int(sys.argv[2])
keras.utils.set_random_seed(0)
train, validation = held_out_split(load(None).train, 0.1, train_size or None, seed=0)  # the search's own split
model = build(ModelConfig())
times = []
for _ in range(epochs):
    started = time.perf_counter()
    model.fit(train.images, one_hot(train.labels), batch_size=128, epochs=1, verbose=0,
              validation_data=(validation.images, one_hot(validation.labels)))
    times.append(time.perf_counter() - started)
print(json.dumps({"epoch_s": times, "train_images": len(train)}))
"""


class PeakMemory:
    """Samples the resident memory of a process, of Ray's trial processes and of the champion evaluator until stopped."""

    def __init__(self, driver_pid: int, every_s: float = 0.5) -> None:
        self.driver_pid, self.every_s = driver_pid, every_s
        self.driver_bytes = self.trial_bytes = self.evaluator_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def gigabytes(self) -> dict[str, float]:
        """The peaks, in GB, by process."""
        return {"driver": self.driver_bytes / 1e9, "trial": self.trial_bytes / 1e9, "evaluator": self.evaluator_bytes / 1e9}

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(self.every_s):
            for process in Path("/proc").glob("[0-9]*"):
                try:
                    command = (process / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    rss = next(int(line.split()[1]) * 1024 for line in (process / "status").read_text().splitlines()
                               if line.startswith("VmRSS:"))
                except (OSError, StopIteration):  # the process ended, or is a kernel thread
                    continue
                if int(process.name) == self.driver_pid:
                    self.driver_bytes = max(self.driver_bytes, rss)
                elif command.startswith("ray::ChampionEvaluator"):
                    self.evaluator_bytes = max(self.evaluator_bytes, rss)
                elif command.startswith("ray::") and "IDLE" not in command:
                    self.trial_bytes = max(self.trial_bytes, rss)


def bare_epochs(train_size: int, epochs: int) -> list[float]:
    finished = subprocess.run([sys.executable, "-c", BARE_FIT, str(train_size), str(epochs)], check=True,
                              capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    return json.loads(finished.stdout.strip().splitlines()[-1])["epoch_s"]


def search(workdir: Path, name: str, arguments: list[str]) -> tuple[list[dict], PeakMemory]:
    """Run a search to its end; its trials' epoch results and its peak memory."""
    data = ["--data-dir", str(resolve_data_dir().resolve())]  # the search runs in a folder of its own
    process = subprocess.Popen([sys.executable, "-m", "tuning.search", "--name", name, *data, *arguments], cwd=workdir,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with PeakMemory(process.pid) as memory:
        _, stderr = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"search {name} failed: {stderr[-2000:]}")
    epoch_results = [json.loads(line) for path in (workdir / "results" / name).glob("trial-*/result.json")
                     for line in path.read_text().splitlines() if line.strip()]
    return epoch_results, memory


def trial_split(epoch_results: list[dict]) -> dict[str, float]:
    """Where the trial's epochs went (medians): the trial's own timings, and the rest of Tune's `time_this_iter_s`,
    which runs from the driver asking for an epoch to its result, so without the report's wait for the driver."""
    parts = {part: statistics.median(result[f"time_{part}_s"] for result in epoch_results)
             for part in ("fit", "validation", "checkpoint")}
    rest = statistics.median(result["time_this_iter_s"] - sum(result[f"time_{part}_s"] for part in parts)
                             for result in epoch_results)
    return {**parts, "rest": rest}


def report_lines(figures: dict[str, Any]) -> list[str]:
    """The run's epoch times, their split, the ratios and the peak memory, as the run prints them."""
    images, epochs, bare, trial = figures["training_images"], figures["epochs"], figures["bare_epoch_s"], figures["trial_epoch_s"]
    bare_s, trial_s = statistics.median(bare[1:]), statistics.median(trial[1:])
    split, memory = figures["trial_split_s"], figures["memory_gb"]
    lines = [
        f"data: {images} training images, {epochs} epochs, 2 threads; medians of epochs 2-{epochs}",
        (f"bare Keras fit (with validation): {bare_s:.2f} s/epoch = {images / bare_s:,.0f} images/s  "
        f"(epochs: {', '.join(f'{value:.2f}' for value in bare)})"),
        (f"trial in Tune + MLflow + TensorBoard + checkpoints: {trial_s:.2f} s/epoch = {images / trial_s:,.0f} images/s  "
        f"(epochs: {', '.join(f'{value:.2f}' for value in trial)})"),
        "trial epoch split (medians): " + ", ".join(f"{part} {split[part]:.3f} s" for part in ("fit", "validation", "checkpoint"))
        + f", rest of Tune's epoch time {split['rest']:.3f} s (the report's wait for the driver is not in it)",
        (f"overhead: trial / bare = {figures['median_ratio']:.3f} on the medians, {figures['fastest_ratio']:.3f} on the fastest "
        f"epochs ({min(trial[1:]):.2f} s / {min(bare[1:]):.2f} s; target <= {OVERHEAD_TARGET})"),
        (f"peak memory, 1 trial: driver {memory['one_trial']['driver']:.2f} GB, trial process {memory['one_trial']['trial']:.2f} GB, "
        f"champion evaluator {memory['one_trial']['evaluator']:.2f} GB"),
    ]
    if full := memory.get("two_trials_full_data"):
        lines.append(f"peak memory, 2 concurrent trials on the full data: driver {full['driver']:.2f} GB (target <= 1), "
                     f"largest trial process {full['trial']:.2f} GB (target <= 1.5), champion evaluator {full['evaluator']:.2f} GB")
    return lines


def markdown_table(record: dict[str, Any]) -> str:
    """The docs' block of a search-overhead results file, as the run printed it. docs/benchmarks.md holds it as
    printed (`--table FILE`), and a fast test holds the two together."""
    checks = [f"{'met' if check['met'] else 'MISSED'}: {check['check']}" for check in record["checks"]]
    return "\n".join([f"$ {record['command']}", *report_lines(record["figures"]), *checks])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-size", type=int, default=12000, help="0: the whole training file (54,000 train images)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--memory-run", action="store_true", help="also 2 concurrent trials on the full data")
    results.add_table_option(parser)
    options = parser.parse_args()
    if options.table:
        results.print_table(options.table, markdown_table)
        return 0
    if options.epochs < 2:
        parser.error(f"--epochs must be at least 2 (the first epoch, which traces the model, is left out), got {options.epochs}")

    bare = bare_epochs(options.train_size, options.epochs)
    with tempfile.TemporaryDirectory(prefix="search-overhead-") as scratch:
        data_slice = ["--train-size", str(options.train_size)] if options.train_size else []
        original_first = ["--config", str(write_with_points(Path(scratch) / "original_first.yaml", [{}]))]
        epoch_results, memory = search(Path(scratch), "overhead", [
            *original_first, *data_slice, "--num-samples", "1", "--max-epochs", str(options.epochs),
            "--cpus-per-trial", "2", "--max-concurrent-trials", "1", "--seed", "0"])
        epoch_results.sort(key=lambda result: result[STEP_KEY])
        trial = [result["time_this_iter_s"] for result in epoch_results]
        ratio = min(trial[1:]) / min(bare[1:])
        figures: dict[str, Any] = {
            "training_images": epoch_results[0]["train_images"], "epochs": options.epochs, "bare_epoch_s": bare,
            "trial_epoch_s": trial, "trial_split_s": trial_split(epoch_results[1:]),
            "median_ratio": statistics.median(trial[1:]) / statistics.median(bare[1:]), "fastest_ratio": ratio,
            "memory_gb": {"one_trial": memory.gigabytes()}}
        checks = [(f"fastest epochs' ratio <= {OVERHEAD_TARGET}", ratio <= OVERHEAD_TARGET)]
        if options.memory_run:
            _, full = search(Path(scratch), "memory", [
                *original_first, "--num-samples", "2", "--max-epochs", "1", "--max-concurrent-trials", "2", "--cpus-per-trial", "1"])
            figures["memory_gb"]["two_trials_full_data"] = full.gigabytes()
            checks += [("driver <= 1 GB with 2 trials on the full data", full.driver_bytes <= 1e9),
                       ("largest trial process <= 1.5 GB", full.trial_bytes <= 1.5e9)]
    print("\n".join(report_lines(figures)))
    print("\n".join(f"{'met' if held else 'MISSED'}: {text}" for text, held in checks))
    print(f"results: {results.write('search_overhead', figures, checks)}")
    return 0 if all(held for _, held in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
