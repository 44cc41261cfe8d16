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
from typing import Any, Literal

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import optuna  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow.entities import Run  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from tuning import tracking  # noqa: E402
from tuning.space import SearchSpace, load_space  # noqa: E402

PLOTS: dict[str, Callable[[optuna.Study], Any]] = {
    "optimization_history.png": optuna.visualization.matplotlib.plot_optimization_history,
    "parallel_coordinate.png": optuna.visualization.matplotlib.plot_parallel_coordinate,
    "param_importances.png": optuna.visualization.matplotlib.plot_param_importances,
}
SHOWN_METRICS = ("val_accuracy", "val_f1", "val_precision", "val_recall", "val_loss", "training_iteration")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tuning.report", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")
    parser.add_argument("--experiment-name", default=tracking.DEFAULT_EXPERIMENT, help="MLflow experiment")
    parser.add_argument("--run-id", help="parent run of the search (default: the latest search)")
    parser.add_argument("--top", type=int, default=10, help="rows in the comparison table")
    parser.add_argument("--output-dir", default="reports", help="where the plots are saved (a folder per search)")
    options = parser.parse_args(argv)
    try:
        experiment_id = tracking.connect(tracking.resolve_tracking_uri(options.tracking_uri), options.experiment_name)
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
        [experiment_id], filter_string="tags.search_name != ''", order_by=["attributes.start_time DESC"], max_results=1
    )
    if not searches:
        raise LookupError(f"experiment {experiment_id} holds no search runs; run python -m tuning.search first")
    return searches[0]


def build_report(parent: Run) -> Report:
    """Trial runs of `parent` as a table and as an Optuna study over the search's own space."""
    client = MlflowClient()
    metric = parent.data.tags.get("selection_metric", "val_accuracy")
    direction: Literal["minimize", "maximize"] = "minimize" if metric.endswith("loss") else "maximize"
    trials = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
        order_by=["attributes.start_time ASC"],
    )
    space = _search_space(client, parent.info.run_id)
    rows, study = [], optuna.create_study(direction=direction, study_name=parent.info.run_name)
    for run in trials:
        history = [point.value for point in client.get_metric_history(run.info.run_id, metric)]
        if not history:
            continue
        best = min(history) if direction == "minimize" else max(history)
        params = {name: _typed(space, name, run.data.params[name]) for name in space.distributions if name in run.data.params}
        rows.append({"trial_id": run.data.tags.get("trial_id"), f"best_{metric}": best,
                     **{name: run.data.metrics.get(name) for name in SHOWN_METRICS}, **params})
        study.add_trial(optuna.trial.create_trial(params=params, distributions=_distributions(space, params), value=best))
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


def _search_space(client: MlflowClient, parent_run_id: str) -> SearchSpace:
    with tempfile.TemporaryDirectory() as directory:
        local = mlflow.artifacts.download_artifacts(run_id=parent_run_id, artifact_path="search", dst_path=directory)
        return load_space(next(Path(local).glob("*.yaml")))


def _distributions(space: SearchSpace, params: dict[str, Any]) -> dict[str, optuna.distributions.BaseDistribution]:
    distributions: dict[str, optuna.distributions.BaseDistribution] = {}
    for name in params:
        spec = space.distributions[name]
        kind = spec["type"]
        if kind == "choice":
            distributions[name] = optuna.distributions.CategoricalDistribution(spec["choices"])
        elif kind == "randint":
            distributions[name] = optuna.distributions.IntDistribution(spec["low"], spec["high"], step=spec.get("step", 1))
        else:
            distributions[name] = optuna.distributions.FloatDistribution(spec["low"], spec["high"], log=kind == "loguniform")
    return distributions


def _typed(space: SearchSpace, name: str, logged: str) -> Any:
    """MLflow stores params as text; give them back their search-space type."""
    spec = space.distributions[name]
    if spec["type"] == "choice":
        return next(choice for choice in spec["choices"] if str(choice) == logged)
    return int(logged) if spec["type"] == "randint" else float(logged)


if __name__ == "__main__":
    sys.exit(main())
