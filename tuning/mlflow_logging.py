"""Tune's MLflowLoggerCallback, made resumable and extended with lineage and confusion matrices."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlflow.entities import DatasetInput
from mlflow.tracking import MlflowClient
from ray.air.integrations.mlflow import MLflowLoggerCallback

from tuning.confusion_images import epoch_image

if TYPE_CHECKING:
    from ray.tune.experiment import Trial


class TrialRunsCallback(MLflowLoggerCallback):
    """One MLflow run per trial, nested under the search's parent run.

    On top of Tune's callback: the dataset's lineage on every run, the validation confusion matrix
    as a PNG artifact per epoch, and runs kept per trial id across `Tuner.restore`, so a resumed
    trial goes on logging into the run it started.
    """

    def __init__(self, tracking_uri: str, experiment_name: str, parent_run_id: str, inputs: list[DatasetInput]):
        super().__init__(
            tracking_uri=tracking_uri,
            registry_uri=tracking_uri,
            experiment_name=experiment_name,
            tags={"mlflow.parentRunId": parent_run_id},
        )
        self._inputs = inputs
        self._runs_by_trial_id: dict[str, str] = {}

    def log_trial_start(self, trial: Trial) -> None:
        known_run = self._runs_by_trial_id.get(trial.trial_id)
        if known_run is not None and trial not in self._trial_runs:
            self._trial_runs[trial] = known_run
            MlflowClient().update_run(known_run, status="RUNNING")
        new_trial = trial not in self._trial_runs
        super().log_trial_start(trial)
        run_id = self._trial_runs[trial]
        self._runs_by_trial_id[trial.trial_id] = run_id
        if new_trial:
            MlflowClient().set_tag(run_id, "trial_id", trial.trial_id)
            MlflowClient().log_inputs(run_id, datasets=self._inputs)

    def log_trial_result(self, iteration: int, trial: Trial, result: dict) -> None:
        super().log_trial_result(iteration, trial, result)
        image = epoch_image(trial.trial_id, result)
        if image is not None:
            artifact = f"confusion_matrix/epoch_{int(result['epoch']):03d}.png"
            MlflowClient().log_image(self._trial_runs[trial], image, artifact_file=artifact)

    def get_state(self) -> dict:
        return {"runs_by_trial_id": dict(self._runs_by_trial_id)}

    def set_state(self, state: dict) -> None:
        self._runs_by_trial_id = dict(state.get("runs_by_trial_id", {}))
