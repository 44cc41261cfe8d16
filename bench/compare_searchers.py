"""fmnist-tune against the searchers users would pick instead: same data, space, model and wall-clock budget.

Usage (needs the bench extra: pip install -e ".[bench]"):
    python bench/compare_searchers.py --budget-s 1800 [--max-epochs 27] [--train-size N] [--targets 0.90,0.92]

Runs, one after another and each alone on the machine, KerasTuner Hyperband, Optuna TPE with the
MedianPruner, random search without early stopping, the original CNN trained by plain Keras without any
search (bench/peer_searchers.py) and `python -m tuning.search --time-budget-s` (embedded defaults:
local Ray, SQLite MLflow and Optuna).
Reads every searcher's best validation accuracy so far over wall time, counted from its launch, and
prints it at 5, 10, 20, 30, 40, 50 and 60 minutes (those within the budget) and at the budget's end, the times
to reach --targets, the number of trials and the test accuracy of its best model (a peer's best epoch, the
search's registered champion). Plots the curves to --plot.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow

from tuning.settings import SearchSettings

BENCH = Path(__file__).resolve().parent
DEFAULT_DATA = BENCH.parents[1] / "shared" / "data" / "fashion-mnist"
PEERS = ("kerastuner", "optuna", "random", "original")
SEARCHERS = ("fmnist-tune", *PEERS)
READ_AT_MINUTES = (5, 10, 20, 30, 40, 50, 60)
END_GRACE_S = 600
"""Time a searcher may take after its budget to finish what it started (the search's test evaluation and registration)."""


@dataclass(frozen=True)
class Curve:
    """A searcher's epochs as (seconds since launch, validation accuracy, trial), in time order, and the
    share of CPU time the hypervisor took from this machine while it ran (steal)."""

    launched: float
    epochs: list[tuple[float, float, str]]
    test_accuracy: float | None
    steal: float | None

    def best_by(self, seconds: float) -> float | None:
        """Best validation accuracy of the epochs finished within `seconds` of launch."""
        values = [accuracy for at, accuracy, _ in self.epochs if at <= seconds]
        return max(values) if values else None

    def time_to(self, target: float) -> float | None:
        """Seconds from launch to the first epoch at or above `target`."""
        return next((at for at, accuracy, _ in self.epochs if accuracy >= target), None)

    def trials_by(self, seconds: float) -> int:
        """Trials that finished at least one epoch within `seconds`."""
        return len({trial for at, _, trial in self.epochs if at <= seconds})


def cpu_times() -> list[int]:
    """The machine's CPU time counters (/proc/stat: user, nice, system, idle, iowait, irq, softirq, steal)."""
    return [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def steal_since(before: list[int]) -> float:
    """The share of CPU time stolen by the hypervisor since `before` (a noisy shared host shows it here)."""
    spent = [now - then for now, then in zip(cpu_times(), before, strict=True)]
    return spent[7] / max(1, sum(spent))


def run_peer(peer: str, workdir: Path, options: argparse.Namespace) -> Curve:
    """One peer searcher in its own process; its epochs and the test accuracy of its best saved model."""
    launched, counters = time.time(), cpu_times()
    command = [sys.executable, str(BENCH / "peer_searchers.py"), peer, "--workdir", str(workdir),
               "--budget-s", str(options.budget_s), "--max-epochs", str(options.max_epochs), "--data-dir", options.data_dir]
    if options.train_size:
        command += ["--train-size", str(options.train_size)]
    subprocess.run(command, check=True, timeout=options.budget_s + END_GRACE_S)
    steal = steal_since(counters)
    records = [json.loads(line) for line in (workdir / "epochs.jsonl").read_text().splitlines() if line.strip()]
    epochs = [(record["timestamp"] - launched, record["val_accuracy"], str(record["trial"])) for record in records]
    return Curve(launched, sorted(epochs), _test_accuracy_of_saved_model(workdir / "best.keras", options.data_dir), steal)


def run_fmnist_tune(workdir: Path, options: argparse.Namespace) -> Curve:
    """`python -m tuning.search --time-budget-s` in a scratch folder; its epochs from Tune's results, its champion's test accuracy."""
    launched, counters = time.time(), cpu_times()
    command = [sys.executable, "-m", "tuning.search", "--name", "compare", "--time-budget-s", str(options.budget_s),
               "--max-epochs", str(options.max_epochs), "--data-dir", options.data_dir]
    if options.train_size:
        command += ["--train-size", str(options.train_size)]
    environment = {key: value for key, value in os.environ.items() if key not in ("MLFLOW_TRACKING_URI", "OPTUNA_STORAGE", "RAY_ADDRESS")}
    subprocess.run(command, cwd=workdir, env=environment, check=True, stdout=subprocess.DEVNULL, timeout=options.budget_s + END_GRACE_S)
    return finished_search_curve(workdir / "results" / "compare", f"sqlite:///{workdir / 'mlflow.db'}", "compare",
                                 launched, steal_since(counters))


def finished_search_curve(
    experiment_dir: Path, tracking_uri: str, name: str, launched: float | None = None, steal: float | None = None
) -> Curve:
    """A search's epochs from Tune's results in `experiment_dir`, its champion's test accuracy from its MLflow
    parent run; time zero is `launched`, else that run's start."""
    mlflow.set_tracking_uri(tracking_uri)
    parents = mlflow.search_runs(experiment_names=["fmnist-tune"], filter_string=f"tags.mlflow.runName = '{name}'", output_format="list")
    if launched is None:
        launched = parents[0].info.start_time / 1000
    epochs = [
        (result["timestamp"] - launched, result["val_accuracy"], result["trial_id"])
        for path in experiment_dir.glob("trial-*/result.json")
        for result in map(json.loads, path.read_text().splitlines())
    ]
    return Curve(launched, sorted(epochs), parents[0].data.metrics.get("test_accuracy") if parents else None, steal)


def _test_accuracy_of_saved_model(path: Path, data_dir: str) -> float | None:
    """Test accuracy of a saved Keras model, in a fresh process (this one stays free of TensorFlow)."""
    if not path.exists():
        return None
    script = ("import sys, keras; from fmnist.data import load; from fmnist.evaluation import evaluate; "
              "print(evaluate(keras.models.load_model(sys.argv[1]), load(sys.argv[2]).test).metrics.accuracy)")
    output = subprocess.run([sys.executable, "-c", script, str(path), data_dir], check=True, capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return float(output.stdout.strip().splitlines()[-1])


def print_table(curves: dict[str, Curve], options: argparse.Namespace) -> None:
    """Best validation accuracy so far at each reading, time to the target, trials and test accuracy."""
    readings = [minutes * 60 for minutes in READ_AT_MINUTES if minutes * 60 < options.budget_s] + [options.budget_s]
    header = "".join(f"{f'{seconds / 60:g} min':>9}" for seconds in readings)
    print(f"\nbest validation accuracy so far (budget {options.budget_s / 60:g} min each, max {options.max_epochs} epochs a trial)")
    targets = "".join(f"{'to ' + format(target, '.0%'):>10}" for target in options.targets)
    width = max(12, *(len(name) + 2 for name in curves))
    print(f"{'searcher':<{width}}{header}{targets}  {'trials':>6}  {'test acc':>8}  {'steal':>5}")
    for name, curve in curves.items():
        cells = "".join(f"{_percent(curve.best_by(seconds)):>9}" for seconds in readings)
        times = "".join(f"{_minutes(curve.time_to(target), options.budget_s):>10}" for target in options.targets)
        print(f"{name:<{width}}{cells}{times}  {curve.trials_by(options.budget_s):>6}  {_percent(curve.test_accuracy):>8}  "
              f"{'-' if curve.steal is None else format(curve.steal, '.0%'):>5}")


def plot(curves: dict[str, Curve], options: argparse.Namespace) -> None:
    """Best-so-far validation accuracy over wall-clock minutes, one line per searcher."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5))
    for name, curve in curves.items():
        best, xs, ys = 0.0, [], []
        for at, accuracy, _ in curve.epochs:
            if at <= options.budget_s and accuracy > best:
                best = accuracy
                xs.append(at / 60)
                ys.append(best)
        if xs:
            axes.step(xs + [options.budget_s / 60], ys + [best], where="post", label=name)
    for target in options.targets:
        axes.axhline(target, color="grey", linestyle=":", linewidth=1)
    axes.set(xlabel="wall-clock minutes from launch", ylabel="best validation accuracy so far",
             title=f"Searchers on Fashion-MNIST, {options.budget_s / 60:g} min each, 2 cores")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(options.plot, dpi=100)
    print(f"plot: {options.plot}")


def _minutes(seconds: float | None, budget_s: float) -> str:
    return "never" if seconds is None or seconds > budget_s else f"{seconds / 60:.1f} min"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget-s", type=float, default=1800, help="wall-clock budget of each searcher")
    parser.add_argument("--max-epochs", type=int, default=SearchSettings.max_epochs,
                        help="epochs of a trial that is never stopped early (default: the search's)")
    parser.add_argument("--train-size", type=int, default=None, help="a class-balanced subset of the training file")
    parser.add_argument("--targets", type=lambda text: [float(value) for value in text.split(",")], default=[0.90, 0.92],
                        help="validation accuracies whose time to reach is reported (comma-separated)")
    parser.add_argument("--searchers", default=",".join(SEARCHERS), help=f"comma-separated, of {', '.join(SEARCHERS)}")
    parser.add_argument("--data-dir", default=os.environ.get("FMNIST_DATA_DIR", str(DEFAULT_DATA)))
    parser.add_argument("--plot", type=Path, default=Path("docs/compare_searchers.png"))
    options = parser.parse_args()
    unknown = sorted(set(options.searchers.split(",")) - set(SEARCHERS))
    if unknown:
        parser.error(f"--searchers: unknown searcher {unknown[0]!r}")
    curves: dict[str, Curve] = {}
    for name in options.searchers.split(","):
        with tempfile.TemporaryDirectory(prefix=f"compare-{name}-") as scratch:
            print(f"{name}: {options.budget_s / 60:g} min ...", flush=True)
            curves[name] = run_fmnist_tune(Path(scratch), options) if name == "fmnist-tune" else run_peer(name, Path(scratch), options)
            curve = curves[name]
            print(f"{name}: best {_percent(curve.best_by(options.budget_s))}, test {_percent(curve.test_accuracy)}, "
                  f"{len(curve.epochs)} epochs in {curve.trials_by(options.budget_s)} trials", flush=True)
    print_table(curves, options)
    plot(curves, options)


if __name__ == "__main__":
    main()
