"""`python -m tuning.report`: a search's trials from its stored Optuna study, and Optuna's plots of it.

Finds the search (the latest by default) in MLflow, reads its study from the study storage, prints a
table of its trials (best first: state, value, epochs, settings) and saves Optuna's optimisation
history, intermediate values (where ASHA stopped trials), parallel coordinates and parameter
importances, to a folder and to the search's MLflow parent run (`report/`).

Example:
    python -m tuning.report --tracking-uri http://127.0.0.1:5000 --top 5
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import optuna
import pandas as pd
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from fmnist.command_line import OneLineErrorParser
from tuning.optimization import stored_study
from tuning.runtime.command_line import STUDY_STORAGE_HELP, TRACKING_URI_HELP
from tuning.runtime.error_text import first_line
from tuning.runtime.stores import resolve_study_storage, resolve_tracking_uri
from tuning.settings import DEFAULT_EXPERIMENT
from tuning.tracking import parent_run

PLOTS: dict[str, Callable[[optuna.Study], Any]] = {
    "optimization_history.png": optuna.visualization.matplotlib.plot_optimization_history,
    "intermediate_values.png": optuna.visualization.matplotlib.plot_intermediate_values,
    "parallel_coordinate.png": optuna.visualization.matplotlib.plot_parallel_coordinate,
    "param_importances.png": optuna.visualization.matplotlib.plot_param_importances,
}
NEEDS_TWO_FINISHED = {"param_importances.png", "parallel_coordinate.png"}


def main(argv: list[str] | None = None) -> int:
    parser = OneLineErrorParser(prog="python -m tuning.report", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--tracking-uri", help=TRACKING_URI_HELP)
    parser.add_argument("--study-storage", help=STUDY_STORAGE_HELP)
    parser.add_argument("--experiment-name", default=DEFAULT_EXPERIMENT, help="MLflow experiment")
    parser.add_argument("--run-id", help="parent run of the search (default: the latest search)")
    parser.add_argument("--top", type=int, default=10, help="rows in the comparison table")
    parser.add_argument("--output-dir", default="reports", help="where the plots are saved (a folder per search)")
    options = parser.parse_args(argv)
    storage_url = resolve_study_storage(options.study_storage)
    try:
        experiment_id = parent_run.ensure_experiment(resolve_tracking_uri(options.tracking_uri), options.experiment_name)
        parent = find_parent_run(experiment_id, options.run_id)
        storage = stored_study.check_exists(stored_study.existing_storage(storage_url), storage_url, parent.info.run_name)
    except (parent_run.TrackingError, LookupError, stored_study.StudyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    name, folder = parent.info.run_name, Path(options.output_dir) / parent.info.run_name
    studies = [(f"Search {name} ({parent.info.run_id})", name, folder, "report")]
    if stored_study.screen_study_name(name) in stored_study.study_names(storage):
        studies.append(("Its screening, on a share of the images", stored_study.screen_study_name(name), folder / "screening",
                        "report/screening"))
    for title, study_name, study_folder, artifact_path in studies:
        study = optuna.load_study(study_name=study_name, storage=storage)
        table = trial_table(study)
        print(f"{title}: {len(table)} trials")
        print(table.head(options.top).to_string(index=False, float_format=lambda value: f"{value:.4g}"))
        for path in save_plots(study, study_folder, parent.info.run_id, artifact_path):
            print(f"saved {path}")
    return 0


def find_parent_run(experiment_id: str, run_id: str | None) -> Run:
    """The given parent run, else the most recent search in the experiment."""
    client = MlflowClient()
    if run_id:
        try:
            return client.get_run(run_id)
        except MlflowException as error:
            raise LookupError(f"--run-id {run_id}: no such run ({first_line(error)})") from None
    searches = client.search_runs(
        [experiment_id], filter_string=f"tags.`{parent_run.SEARCH_RUN_TAG}` = 'true'", order_by=["attributes.start_time DESC"], max_results=1
    )
    if not searches:
        raise LookupError(f"experiment {experiment_id} holds no search runs; run python -m tuning.search first")
    return searches[0]


def trial_table(study: optuna.Study) -> pd.DataFrame:
    """One row per trial, best first: Optuna's number, the Tune trial id, state, value, epochs and settings."""
    rows = [
        {"number": trial.number, "tune_trial": trial.user_attrs.get(stored_study.TUNE_TRIAL_ID_ATTR, ""),
         "state": trial.state.name, "value": trial.value, "epochs": len(trial.intermediate_values), **trial.params}
        for trial in study.trials
    ]
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    return table.sort_values(["value", "epochs"], ascending=[not maximize, False], na_position="last")


def save_plots(study: optuna.Study, folder: Path, parent_run_id: str, artifact_path: str = "report") -> list[Path]:
    """Optuna's plots as PNG files in `folder`, also logged to the parent run under `artifact_path`."""
    folder.mkdir(parents=True, exist_ok=True)
    finished = study.get_trials(deepcopy=False, states=stored_study.FINISHED_STATES)
    saved = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", UserWarning)  # matplotlib, on an axis of a setting every trial shares
        for file_name, plot in PLOTS.items():
            if file_name in NEEDS_TWO_FINISHED and len(finished) < 2:
                continue
            axes = plot(study)
            figure = (axes.flat[0] if hasattr(axes, "flat") else axes).get_figure()
            figure.set_size_inches(11, 6)
            figure.tight_layout()
            figure.savefig(folder / file_name, dpi=100)
            plt.close(figure)
            MlflowClient().log_artifact(parent_run_id, str(folder / file_name), artifact_path=artifact_path)
            saved.append(folder / file_name)
    return saved


if __name__ == "__main__":
    sys.exit(main())
