"""`python -m tuning.report`: compare a search's best trials from MLflow and plot the search with Optuna.

Reads the parent run of a search (the latest by default) and its trial runs, prints a table of params and
metrics, rebuilds an Optuna study from them and saves Optuna's optimisation-history, parallel-coordinate
and parameter-importance plots, to a folder and to the parent run (`report/`).

Example:
    python -m tuning.report --tracking-uri http://127.0.0.1:5000 --top 5
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import mlflow
import optuna
import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from tuning import objective, tracking
from tuning.settings import DEFAULT_EXPERIMENT, resolve_tracking_uri
from tuning.space import SearchSpace, load_space

PLOTS: dict[str, Callable[[optuna.Study], Any]] = {
    "optimization_history.png": optuna.visualization.matplotlib.plot_optimization_history,
    "parallel_coordinate.png": optuna.visualization.matplotlib.plot_parallel_coordinate,
    "param_importances.png": optuna.visualization.matplotlib.plot_param_importances,
}
SHOWN_METRICS = (*objective.SELECTABLE_METRICS, "training_iteration")
SELECTION_METRIC_PARAM = "search.metric"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tuning.report", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")
    parser.add_argument("--experiment-name", default=DEFAULT_EXPERIMENT, help="MLflow experiment")
    parser.add_argument("--run-id", help="parent run of the search (default: the latest search)")
    parser.add_argument("--top", type=int, default=10, help="rows in the comparison table")
    parser.add_argument("--output-dir", default="reports", help="where the plots are saved (a folder per search)")
    options = parser.parse_args(argv)
    try:
        experiment_id = tracking.ensure_experiment(resolve_tracking_uri(options.tracking_uri), options.experiment_name)
        parent = find_parent_run(experiment_id, options.run_id)
    except (tracking.TrackingError, LookupError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report = build_report(parent)
    print(f"Search {parent.info.run_name} ({parent.info.run_id}): {len(report.table)} trials, by {report.metric}")
    print(report.table.head(options.top).to_string(index=False, float_format=lambda value: f"{value:.4g}"))
    folder = Path(options.output_dir) / parent.info.run_name
    for path in save_plots(report.study, folder, parent.info.run_id):
        print(f"saved {path}")
    return 0


class Report:
    """The trial table (best first) and the Optuna study rebuilt from it."""

    def __init__(self, table: pd.DataFrame, study: optuna.Study, metric: str):
        self.table, self.study, self.metric = table, study, metric


def find_parent_run(experiment_id: str, run_id: str | None) -> Run:
    """The given parent run, else the most recent search in the experiment."""
    client = MlflowClient()
    if run_id:
        return client.get_run(run_id)
    searches = client.search_runs(
        [experiment_id], filter_string=f"tags.`{tracking.SEARCH_RUN_TAG}` = 'true'", order_by=["attributes.start_time DESC"], max_results=1
    )
    if not searches:
        raise LookupError(f"experiment {experiment_id} holds no search runs; run python -m tuning.search first")
    return searches[0]


def build_report(parent: Run) -> Report:
    """Trial runs of `parent` as a table and as an Optuna study over the search's own space."""
    client = MlflowClient()
    metric = parent.data.params.get(SELECTION_METRIC_PARAM, "val_accuracy")
    direction = objective.optuna_direction(metric)
    trials = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`{tracking.PARENT_RUN_TAG}` = '{parent.info.run_id}'",
        order_by=["attributes.start_time ASC"],
    )
    space = _search_space(parent.info.run_id)
    distributions = space.optuna_distributions()
    rows, study = [], optuna.create_study(direction=direction, study_name=parent.info.run_name)
    for run in trials:
        history = [point.value for point in client.get_metric_history(run.info.run_id, metric)]
        if not history:
            continue
        best = min(history) if direction == "minimize" else max(history)
        params = {name: space.typed_value(name, run.data.params[name]) for name in space.distributions if name in run.data.params}
        rows.append({"trial_id": run.data.tags.get("trial_id"), f"best_{metric}": best,
                     **{name: run.data.metrics.get(name) for name in SHOWN_METRICS}, **params})
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions={name: distributions[name] for name in params}, value=best
        ))
    table = pd.DataFrame(rows).sort_values(f"best_{metric}", ascending=direction == "minimize")
    return Report(table, study, metric)


def save_plots(study: optuna.Study, folder: Path, parent_run_id: str) -> list[Path]:
    """Optuna's plots as PNG files in `folder`, also logged to the parent run under `report/`."""
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for file_name, plot in PLOTS.items():
            if file_name == "param_importances.png" and len(study.trials) < 2:
                continue
            axes = plot(study)
            figure = (axes.flat[0] if hasattr(axes, "flat") else axes).get_figure()
            figure.set_size_inches(11, 6)
            figure.tight_layout()
            figure.savefig(folder / file_name, dpi=100)
            plt.close(figure)
            MlflowClient().log_artifact(parent_run_id, str(folder / file_name), artifact_path="report")
            saved.append(folder / file_name)
    return saved


def _search_space(parent_run_id: str) -> SearchSpace:
    with tempfile.TemporaryDirectory() as directory:
        local = mlflow.artifacts.download_artifacts(
            run_id=parent_run_id, artifact_path=tracking.SPACE_ARTIFACT_DIR, dst_path=directory
        )
        return load_space(next(Path(local).glob("*.yaml")))


if __name__ == "__main__":
    sys.exit(main())
