"""fmnist-tune against the searchers users would pick instead: same data, space, model and wall-clock budget.

Usage (needs the bench extra: pip install -e ".[bench]"):
    python bench/compare_searchers.py --budget-s 600 [--arms cold,same-start] [--seeds 0,1] [--searchers ...]

Runs, one after another and each alone on the machine, KerasTuner Hyperband, Optuna TPE with the
MedianPruner, random search without early stopping (bench/peer_searchers.py) and `python -m tuning.search
--time-budget-s` (embedded defaults: local Ray, SQLite MLflow and Optuna), in two arms:
  cold        nobody gets first points: fmnist-tune's space with `points_to_evaluate: []`, the peers as they come
  same-start  everybody gets the space's points to evaluate first (fmnist-tune's default)
and, once a seed, the plain-Keras controls: the original CNN and the space's first point, each trained for the
whole budget, its epochs (and cosine schedule) fitted to it as a search's trial fits them. Every searcher runs once a seed of --seeds.
Reads every run's best validation accuracy so far over wall time, counted from its launch, and prints it at 5, 10,
20, 30, 40, 50 and 60 minutes (those within the budget) and at the budget's end, the times to reach --targets, the
number of trials, when its last epoch ended and the test accuracy of its final model, then each searcher's mean over
the seeds, and which screening trial a screened search promoted. Writes
docs/results/search_quality_<minutes>min.json (or --results NAME) and plots to --plot; --keep-studies DIR keeps each
search's Optuna studies.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import results

from fmnist.locations import DATA_DIR_HELP, resolve_data_dir
from tuning.optimization.objective import FIDELITY_KEYS, SCREEN_NAME_PREFIX, TRIAL_NAME_PREFIX, TRIAL_NAME_PREFIXES
from tuning.optimization.space import write_with_points
from tuning.optimization.trainable import MODEL_FILE
from tuning.settings import SearchSettings

BENCH = Path(__file__).resolve().parent
SEARCHING_PEERS = ("kerastuner", "optuna", "random")
CONTROLS = ("original", "first-point")
"""Plain Keras, no search: the original CNN and the space's first point, each trained for the whole budget."""
SEARCHERS = ("fmnist-tune", *SEARCHING_PEERS)
ARMS = ("cold", "same-start")
CONTROL_ARM = "control"
READ_AT_MINUTES = (5, 10, 20, 30, 40, 50, 60)
END_GRACE_S = 600
"""Time a searcher may take after its budget to finish what it started (the search's test evaluation and registration)."""
TRIAL_MODELS_DIR = "trials"
"""Where a peer keeps its leading trials' best models, `<trial>.keras` each (bench/peer_searchers.py)."""
FINAL_MODEL_CANDIDATES = SearchSettings.ensemble_size
"""The leading trials the final-model step chooses among, as many as the search's champion (`--ensemble-size`)."""


@dataclass(frozen=True)
class Curve:
    """A searcher's epochs as (seconds since launch, validation accuracy, trial), in time order, and the
    share of CPU time the hypervisor took from this machine while it ran (steal)."""

    launched: float
    epochs: list[tuple[float, float, str]]
    test_accuracy: float | None
    """The run's final model's: the average of its leading trials that greedy selection on validation keeps."""
    steal: float | None
    promoted: str | None = None
    """A screened search's screening trial whose configuration trained first on all the images (`screen-<n>`)."""
    best_trial_test_accuracy: float | None = None
    """The best trial's alone (by validation)."""
    members: int | None = None
    """The trials the final model averages."""

    def best_by(self, seconds: float) -> float | None:
        """Best validation accuracy of the epochs finished within `seconds` of launch."""
        values = [accuracy for at, accuracy, _ in self.epochs if at <= seconds]
        return max(values) if values else None

    def time_to(self, target: float) -> float | None:
        """Seconds from launch to the first epoch at or above `target`."""
        return next((at for at, accuracy, _ in self.epochs if accuracy >= target), None)

    @property
    def last_epoch_minutes(self) -> float | None:
        """Minutes from launch to the end of the last epoch: how much of the budget the run trained in."""
        return self.epochs[-1][0] / 60 if self.epochs else None

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


@dataclass(frozen=True)
class Run:
    """One searcher's run: which searcher, in which arm, with which seed."""

    searcher: str
    arm: str
    seed: int

    @property
    def label(self) -> str:
        return f"{self.searcher} {self.arm} s{self.seed}"


def planned_runs(searchers: list[str], arms: list[str], seeds: list[int]) -> list[Run]:
    """Every run, a seed at a time: each arm's searchers, then the seed's controls."""
    runs: list[Run] = []
    for seed in seeds:
        runs += [Run(searcher, arm, seed) for arm in arms for searcher in searchers if searcher not in CONTROLS]
        runs += [Run(searcher, CONTROL_ARM, seed) for searcher in searchers if searcher in CONTROLS]
    return runs


def run_peer(run: Run, workdir: Path, options: argparse.Namespace) -> Curve:
    """One peer searcher in its own process; its epochs and the test accuracies of its final model and best trial."""
    launched, counters = time.time(), cpu_times()
    command = [sys.executable, str(BENCH / "peer_searchers.py"), run.searcher, "--workdir", str(workdir),
               "--budget-s", str(options.budget_s), "--max-epochs", str(options.max_epochs or SearchSettings.max_epochs),
               "--data-dir", options.data_dir,
               "--seed", str(run.seed)]
    if run.arm == "same-start":
        command.append("--same-start")
    if options.train_size:
        command += ["--train-size", str(options.train_size)]
    subprocess.run(command, check=True, timeout=options.budget_s + END_GRACE_S)
    steal = steal_since(counters)
    records = [json.loads(line) for line in (workdir / "epochs.jsonl").read_text().splitlines() if line.strip()]
    epochs = [(record["timestamp"] - launched, record["val_accuracy"], str(record["trial"])) for record in records]
    best = {trial: (accuracy, trial_model_path(workdir, trial))  # ascending, so each trial keeps its best
            for _, accuracy, trial in sorted(epochs, key=lambda epoch: epoch[1])}
    final = final_model(leading_models(best), options.data_dir)
    return Curve(launched, sorted(epochs), final.get("test_accuracy"), steal,
                 best_trial_test_accuracy=final.get("best_trial_test_accuracy"), members=len(final.get("members", [])) or None)


def run_fmnist_tune(run: Run, workdir: Path, options: argparse.Namespace) -> Curve:
    """`python -m tuning.search --time-budget-s` in a scratch folder; its epochs from Tune's results, its champion's
    test accuracy and its best trial's. The cold arm searches a copy of the space without points to evaluate."""
    launched, counters = time.time(), cpu_times()
    command = [sys.executable, "-m", "tuning.search", "--name", "compare", "--time-budget-s", str(options.budget_s),
               "--data-dir", options.data_dir, "--seed", str(run.seed)]
    if options.max_epochs:
        command += ["--max-epochs", str(options.max_epochs)]
    if run.arm == "cold":
        command += ["--config", str(write_with_points(workdir / "cold_space.yaml", []))]
    if options.train_size:
        command += ["--train-size", str(options.train_size)]
    environment = {key: value for key, value in os.environ.items() if key not in ("MLFLOW_TRACKING_URI", "OPTUNA_STORAGE", "RAY_ADDRESS")}
    subprocess.run(command, cwd=workdir, env=environment, check=True, stdout=subprocess.DEVNULL, timeout=options.budget_s + END_GRACE_S)
    if options.keep_studies:  # the studies outlive the scratch folder, for importances and optuna-dashboard
        options.keep_studies.mkdir(parents=True, exist_ok=True)
        shutil.copy2(workdir / "optuna.db", options.keep_studies / f"{run.searcher}-{run.arm}-s{run.seed}.db")
    experiment_dir = workdir / "results" / "compare"
    curve = finished_search_curve(experiment_dir, f"sqlite:///{workdir / 'mlflow.db'}", "compare", launched, steal_since(counters))
    final = final_model(leading_models(best_checkpoints(experiment_dir)), options.data_dir)
    return dataclasses.replace(curve, best_trial_test_accuracy=final.get("best_trial_test_accuracy"),
                               members=len(final.get("members", [])) or None)


def finished_search_curve(
    experiment_dir: Path, tracking_uri: str, name: str, launched: float | None = None, steal: float | None = None
) -> Curve:
    """A search's epochs from Tune's results in `experiment_dir`, its champion's test accuracy from its MLflow
    parent run; time zero is `launched`, else that run's start."""
    mlflow.set_tracking_uri(tracking_uri)
    parents = mlflow.search_runs(experiment_names=["fmnist-tune"], filter_string=f"tags.mlflow.runName = '{name}'", output_format="list")
    if launched is None:
        launched = parents[0].info.start_time / 1000
    trial_results = {path.parent.name: [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
                     for path in curve_files(experiment_dir)}
    epochs = [(result["timestamp"] - launched, result["val_accuracy"], result["trial_id"])
              for results_of_trial in trial_results.values() for result in results_of_trial]
    first_results = {trial: results_of_trial[0] for trial, results_of_trial in trial_results.items() if results_of_trial}
    return Curve(launched, sorted(epochs), parents[0].data.metrics.get("test_accuracy") if parents else None, steal,
                 promoted_screening_trial(first_results))


def promoted_screening_trial(first_results: dict[str, dict[str, Any]]) -> str | None:
    """Of a search's trials' first results by trial name, the screening trial (`screen-<n>`) whose configuration the
    first full-data trial trained, or None when the search did not screen or trained none: a same-start search's
    `screen-0` is the space's first point."""

    def model_config(name: str) -> dict[str, Any]:
        return {key: value for key, value in first_results[name]["config"].items() if key not in FIDELITY_KEYS}

    full = sorted((result["timestamp"], name) for name, result in first_results.items() if name.startswith(TRIAL_NAME_PREFIX))
    if not full:
        return None
    promoted = model_config(full[0][1])
    screened = sorted((int(name.removeprefix(SCREEN_NAME_PREFIX)), name) for name in first_results
                      if name.startswith(SCREEN_NAME_PREFIX))
    return next((name for _, name in screened if model_config(name) == promoted), None)


def curve_files(experiment_dir: Path) -> list[Path]:
    """Every trial's `result.json` in a search's folder, screening trials' too."""
    return [path for prefix in TRIAL_NAME_PREFIXES for path in sorted(experiment_dir.glob(f"{prefix}*/result.json"))]


def trial_model_path(workdir: Path, trial: str | int) -> Path:
    """Where a peer keeps `trial`'s best model."""
    return workdir / TRIAL_MODELS_DIR / f"{trial}.keras"


def best_checkpoints(experiment_dir: Path) -> dict[str, tuple[float, Path]]:
    """Each trial of a search: its best validation accuracy and the model of that epoch's checkpoint."""
    best: dict[str, tuple[float, Path]] = {}
    for path in curve_files(experiment_dir):
        results_of_trial = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if results_of_trial:
            top = max(results_of_trial, key=lambda result: result["val_accuracy"])
            best[path.parent.name] = (top["val_accuracy"], path.parent / top["checkpoint_dir_name"] / MODEL_FILE)
    return best


def leading_models(best: dict[str, tuple[float, Path]]) -> list[Path]:
    """The best models of the `FINAL_MODEL_CANDIDATES` trials with the best validation accuracy, best first, of those
    that kept one."""
    ranked = sorted(best.values(), key=lambda pair: pair[0], reverse=True)
    return [path for _, path in ranked if path.exists()][:FINAL_MODEL_CANDIDATES]


def final_model(models: list[Path], data_dir: str) -> dict[str, Any]:
    """bench/final_model.py over `models` (best first), in a fresh process (this one stays free of TensorFlow): the
    test accuracy of the greedy selection and of the best trial alone, and the members; empty without models."""
    if not models:
        return {}
    output = subprocess.run([sys.executable, str(BENCH / "final_model.py"), data_dir, *map(str, models)], check=True,
                            capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return json.loads(output.stdout.strip().splitlines()[-1])


def print_table(curves: dict[str, Curve], options: argparse.Namespace) -> None:
    """Best validation accuracy so far at each reading, time to the target, trials, the test accuracy of the final
    model and of the best trial alone."""
    readings = [minutes * 60 for minutes in READ_AT_MINUTES if minutes * 60 < options.budget_s] + [options.budget_s]
    header = "".join(f"{f'{seconds / 60:g} min':>9}" for seconds in readings)
    epochs = f"max {options.max_epochs}" if options.max_epochs else "each searcher's own"
    print(f"\nbest validation accuracy so far (budget {options.budget_s / 60:g} min each, {epochs} epochs a trial)")
    targets = "".join(f"{'to ' + format(target, '.0%'):>10}" for target in options.targets)
    width = max(12, *(len(name) + 2 for name in curves))
    print(f"{'searcher':<{width}}{header}{targets}  {'trials':>6}  {'test acc':>8}  {'best trial':>10}  {'steal':>5}")
    for name, curve in curves.items():
        cells = "".join(f"{_percent(curve.best_by(seconds)):>9}" for seconds in readings)
        times = "".join(f"{_minutes(curve.time_to(target), options.budget_s):>10}" for target in options.targets)
        print(f"{name:<{width}}{cells}{times}  {curve.trials_by(options.budget_s):>6}  {_percent(curve.test_accuracy):>8}  "
              f"{_percent(curve.best_trial_test_accuracy):>10}  "
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


def mean_rows(curves: dict[Run, Curve], budget_s: float) -> list[dict[str, object]]:
    """Each searcher's and arm's mean over its seeds: best validation and test accuracy, trials."""
    rows = []
    for searcher, arm in dict.fromkeys((run.searcher, run.arm) for run in curves):
        runs = [curve for run, curve in curves.items() if (run.searcher, run.arm) == (searcher, arm)]
        tests = [curve.test_accuracy for curve in runs if curve.test_accuracy is not None]
        best = [value for curve in runs if (value := curve.best_by(budget_s)) is not None]
        rows.append({"searcher": searcher, "arm": arm, "seeds": len(runs),
                     "mean_best_validation": sum(best) / len(best) if best else None,
                     "mean_test_accuracy": sum(tests) / len(tests) if tests else None,
                     "mean_trials": sum(curve.trials_by(budget_s) for curve in runs) / len(runs)})
    return rows


def write_results(curves: dict[Run, Curve], options: argparse.Namespace) -> Path:
    """docs/results/<--results>.json (search_quality_<minutes>min by default): every run's curve readings and each searcher's means, with
    the check that fmnist-tune's mean test accuracy beats every other searcher's and control's."""
    readings = [minutes for minutes in READ_AT_MINUTES if minutes * 60 < options.budget_s] + [options.budget_s / 60]
    runs = [{"searcher": run.searcher, "arm": run.arm, "seed": run.seed,
             "best_validation_by_minute": {f"{minutes:g}": curve.best_by(minutes * 60) for minutes in readings},
             "test_accuracy": curve.test_accuracy, "best_trial_test_accuracy": curve.best_trial_test_accuracy,
             "members": curve.members, "trials": curve.trials_by(options.budget_s),
             "epochs": len(curve.epochs), "last_epoch_minutes": curve.last_epoch_minutes, "steal": curve.steal,
             **({"promoted": curve.promoted} if curve.promoted else {})} for run, curve in curves.items()]
    means = mean_rows(curves, options.budget_s)
    ours = {row["arm"]: row["mean_test_accuracy"] for row in means if row["searcher"] == "fmnist-tune"}
    checks = [
        (f"fmnist-tune ({arm}) beats {row['searcher']} ({row['arm']}) on mean test accuracy",
         ours[arm] is not None and row["mean_test_accuracy"] is not None and ours[arm] > row["mean_test_accuracy"])
        for arm in ours for row in means if row["searcher"] != "fmnist-tune" and row["arm"] in (arm, CONTROL_ARM)
    ]
    figures = {"budget_minutes": options.budget_s / 60, "max_epochs": options.max_epochs,
               "control_epochs": "fitted to the budget", "runs": runs, "means": means}
    return results.write(options.results or f"search_quality_{options.budget_s / 60:g}min", figures, checks)


def markdown_table(record: dict[str, Any]) -> str:
    """The docs' table of a search-quality results file: a row a run (best validation accuracy at each reading, the
    test accuracy of its final model and of its best trial, its trials), then each searcher's mean over its seeds. docs/benchmarks.md holds
    it as printed (`--table FILE`), and a fast test holds the two together."""
    figures = record["figures"]
    minutes = list(figures["runs"][0]["best_validation_by_minute"])
    lines = ["| searcher | arm | seed | " + " | ".join(f"{reading} min" for reading in minutes)
             + " | test | best trial's test | trials |",
             "|---|---|---|" + "---|" * len(minutes) + "---|---|---|"]
    for run in figures["runs"]:
        cells = " | ".join(_percent(run["best_validation_by_minute"][reading]) for reading in minutes)
        lines.append(f"| {run['searcher']} | {run['arm']} | {run['seed']} | {cells} | {_percent(run['test_accuracy'])} "
                     f"| {_percent(run.get('best_trial_test_accuracy'))} | {run['trials']} |")
    lines += ["", "| searcher | arm | seeds | mean best validation | mean test | mean trials |", "|---|---|---|---|---|---|"]
    lines += [f"| {row['searcher']} | {row['arm']} | {row['seeds']} | {_percent(row['mean_best_validation'])} | "
              f"{_percent(row['mean_test_accuracy'])} | {row['mean_trials']:g} |" for row in figures["means"]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget-s", type=float, default=600, help="wall-clock budget of each run")
    parser.add_argument("--max-epochs", type=int, default=None,
                        help="epochs of a trial that is never stopped early (default: each searcher's own: 27 for the "
                             "peers, and for fmnist-tune what its budget fits once it screens)")
    parser.add_argument("--train-size", type=int, default=None, help="a class-balanced subset of the training file")
    parser.add_argument("--targets", type=lambda text: [float(value) for value in text.split(",")], default=[0.90, 0.92],
                        help="validation accuracies whose time to reach is reported (comma-separated)")
    parser.add_argument("--searchers", default=",".join((*SEARCHERS, *CONTROLS)),
                        help=f"comma-separated, of {', '.join((*SEARCHERS, *CONTROLS))}")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, of {', '.join(ARMS)}")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds; each searcher runs once a seed")
    parser.add_argument("--data-dir", default=str(resolve_data_dir()), help=DATA_DIR_HELP)
    parser.add_argument("--plot", type=Path, default=Path("docs/compare_searchers.png"))
    parser.add_argument("--keep-studies", type=Path, default=None,
                        help="copy each fmnist-tune run's Optuna studies (its search's and its screening's) to this folder")
    parser.add_argument("--results", default=None,
                        help="the results file's name in docs/results/ (default: search_quality_<minutes>min)")
    results.add_table_option(parser)
    options = parser.parse_args()
    if options.table:
        results.print_table(options.table, markdown_table)
        return
    searchers, arms = options.searchers.split(","), options.arms.split(",")
    for flag, given, known in (("--searchers", searchers, (*SEARCHERS, *CONTROLS)), ("--arms", arms, ARMS)):
        if unknown := sorted(set(given) - set(known)):
            parser.error(f"{flag}: unknown {unknown[0]!r}; known: {', '.join(known)}")
    try:
        seeds = [int(seed) for seed in options.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds: {options.seeds!r} is not a comma-separated list of integers")
    if options.budget_s <= 0:
        parser.error("--budget-s: must be above 0")
    options.data_dir = str(Path(options.data_dir).resolve())  # each run works in a scratch folder of its own
    curves: dict[Run, Curve] = {}
    for run in planned_runs(searchers, arms, seeds):
        with tempfile.TemporaryDirectory(prefix=f"compare-{run.searcher}-") as scratch:
            print(f"{run.label}: {options.budget_s / 60:g} min ...", flush=True)
            runner = run_fmnist_tune if run.searcher == "fmnist-tune" else run_peer
            curve = curves[run] = runner(run, Path(scratch), options)
            print(f"{run.label}: best {_percent(curve.best_by(options.budget_s))}, test {_percent(curve.test_accuracy)} "
                  f"({curve.members or 0} trials averaged; the best trial alone {_percent(curve.best_trial_test_accuracy)}), "
                  f"{len(curve.epochs)} epochs in {curve.trials_by(options.budget_s)} trials"
                  + (f", the last ending at {curve.last_epoch_minutes:.1f} min" if curve.epochs else "")
                  + (f", {curve.promoted} promoted" if curve.promoted else ""), flush=True)
    print_table({run.label: curve for run, curve in curves.items()}, options)
    print("\nmeans over seeds")
    for row in mean_rows(curves, options.budget_s):
        print(f"{row['searcher']:<12} {row['arm']:<11} {row['seeds']} seed(s)  best {_percent(row['mean_best_validation'])}  "
              f"test {_percent(row['mean_test_accuracy'])}  trials {row['mean_trials']:.1f}")
    print(f"results: {write_results(curves, options)}")
    plot({run.label: curve for run, curve in curves.items()}, options)


if __name__ == "__main__":
    main()
