"""A Tune callback that gives every trial one MLflow run, nested under the search's parent run.

Each run gets the trial's config as params, the dataset's lineage, every numeric result per epoch (one
`log_batch` request per result) and the validation confusion matrix as `confusion_matrix/epoch_NNN.png`.
Runs are kept per trial id in the callback's state, which Tune saves with the experiment: a trial that
restarts, or a search resumed with `Tuner.restore`, goes on logging into the run it started.
"""

from __future__ import annotations

import numbers
import time
from typing import TYPE_CHECKING, Any

from mlflow.entities import DatasetInput, Metric, Param
from mlflow.tracking import MlflowClient
from ray.tune.logger import LoggerCallback

from tuning.confusion_images import epoch_artifact, epoch_image
from tuning.tracking import PARENT_RUN_TAG

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

TRIAL_ID_TAG = "trial_id"
STEP_KEY = "training_iteration"


class MLflowTrialsCallback(LoggerCallback):
    """One MLflow run per Tune trial, nested under `parent_run_id` in `experiment_id`."""

    def __init__(self, tracking_uri: str, experiment_id: str, parent_run_id: str, inputs: list[DatasetInput]):
        self._tracking_uri = tracking_uri
        self._experiment_id = experiment_id
        self._parent_run_id = parent_run_id
        self._inputs = inputs
        self._run_ids: dict[str, str] = {}

    @property
    def run_ids(self) -> dict[str, str]:
        """Trial id -> MLflow run id, for every trial that has started."""
        return dict(self._run_ids)

    def log_trial_start(self, trial: Trial) -> None:
        client = MlflowClient(self._tracking_uri)
        run_id = self._run_ids.get(trial.trial_id)
        if run_id is not None:
            client.update_run(run_id, status="RUNNING")
            return
        tags = {PARENT_RUN_TAG: self._parent_run_id, TRIAL_ID_TAG: trial.trial_id, "trial_name": str(trial)}
        run_id = client.create_run(self._experiment_id, run_name=str(trial), tags=tags).info.run_id
        self._run_ids[trial.trial_id] = run_id
        client.log_batch(run_id, params=[Param(name, str(value)) for name, value in sorted(trial.config.items())])
        client.log_inputs(run_id, datasets=self._inputs)

    def log_trial_result(self, iteration: int, trial: Trial, result: dict) -> None:
        client = MlflowClient(self._tracking_uri)
        run_id = self._run_ids[trial.trial_id]
        client.log_batch(run_id, metrics=numeric_metrics(result))
        image = epoch_image(trial.trial_id, result)
        if image is not None:
            client.log_image(run_id, image, artifact_file=epoch_artifact(result))

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        run_id = self._run_ids.get(trial.trial_id)
        if run_id is not None:
            MlflowClient(self._tracking_uri).set_terminated(run_id, "FAILED" if failed else "FINISHED")

    def get_state(self) -> dict[str, Any]:
        return {"run_ids": dict(self._run_ids)}

    def set_state(self, state: dict[str, Any]) -> None:
        self._run_ids = dict(state.get("run_ids", {}))


def numeric_metrics(result: dict[str, Any]) -> list[Metric]:
    """The result's top-level numbers (booleans excluded) as MLflow metrics at step `training_iteration`."""
    step, timestamp = int(result[STEP_KEY]), int(time.time() * 1000)
    return [
        Metric(name, float(value), timestamp, step)
        for name, value in sorted(result.items())
        if isinstance(value, numbers.Real) and not isinstance(value, bool)
    ]
