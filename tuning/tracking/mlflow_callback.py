"""A Tune callback that gives every trial one MLflow run, nested under the search's parent run.

Each run gets the trial's config as params, the dataset's lineage, every numeric result per epoch (one
`log_batch` request per result) and the validation confusion matrix as `confusion_matrix/epoch_NNN.png`
(drawn by the outbox's thread), and a `device` tag naming what the trial trains on.
The writes go through an ordered outbox (`tuning/tracking/mlflow_outbox.py`) sent by a background thread, so an
unreachable MLflow never stalls training. Runs and unsent writes are kept in the callback's state,
which Tune saves with the experiment: a trial that restarts, or a search resumed with `Tuner.restore`,
goes on logging into the run it started.
"""

from __future__ import annotations

import numbers
import sys
import time
from typing import TYPE_CHECKING, Any

from mlflow.entities import DatasetInput, Metric
from ray.tune.logger import LoggerCallback

from tuning.optimization.objective import DEVICE_KEY
from tuning.tracking.confusion_images import epoch_confusion_image
from tuning.tracking.mlflow_outbox import DEVICE_TAG, STEP_METRIC, MlflowOutbox, TrialWrite

if TYPE_CHECKING:
    from ray.tune.experiment import Trial


class MLflowTrialsCallback(LoggerCallback):
    """One MLflow run per Tune trial, nested under `parent_run_id` in `experiment_id`."""

    def __init__(self, tracking_uri: str, experiment_id: str, parent_run_id: str, inputs: list[DatasetInput]):
        self._outbox = MlflowOutbox(tracking_uri, experiment_id, parent_run_id, inputs)
        self._tracking_uri = tracking_uri
        self._devices: dict[str, str] = {}
        """Trial id -> the device its run's tag names: the tag is sent again only when a restart moves the trial."""
        self.drain_s = 0.0
        """How long the experiment's end waited for the queued writes."""

    @property
    def peak_backlog(self) -> int:
        """The most writes that were queued for MLflow at once."""
        return self._outbox.peak_backlog

    @property
    def run_ids(self) -> dict[str, str]:
        """Trial id -> MLflow run id, for every trial whose run has been created."""
        return self._outbox.run_ids

    def log_trial_start(self, trial: Trial) -> None:
        params = [(name, str(value)) for name, value in sorted(trial.config.items())]
        self._outbox.put(TrialWrite(trial.trial_id, "start", (str(trial), params)))

    def log_trial_result(self, iteration: int, trial: Trial, result: dict) -> None:
        epoch = int(result[STEP_METRIC])
        self._outbox.put(TrialWrite(trial.trial_id, "metrics", numeric_metrics(result), epoch))
        device = result.get(DEVICE_KEY)
        if device is not None and self._devices.get(trial.trial_id) != device:
            self._devices[trial.trial_id] = device
            self._outbox.put(TrialWrite(trial.trial_id, "tags", {DEVICE_TAG: device}))
        image = epoch_confusion_image(trial.trial_id, result)
        if image is not None:
            self._outbox.put(TrialWrite(trial.trial_id, "image", image, epoch))

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        self._outbox.put(TrialWrite(trial.trial_id, "end", "FAILED" if failed else "FINISHED"))

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        """Send what is still queued before the search goes on to its winner."""
        if self._outbox.pending():
            print(f"sending {len(self._outbox.pending())} queued writes to MLflow at {self._tracking_uri}",
                  file=sys.stderr, flush=True)
        started = time.monotonic()
        self.flush()
        self.drain_s = time.monotonic() - started

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every queued write reached MLflow; True when none is left."""
        return self._outbox.flush(timeout_s)

    def get_state(self) -> dict[str, Any]:
        run_ids, pending = self._outbox.snapshot()
        return {"run_ids": run_ids, "pending": pending}

    def set_state(self, state: dict[str, Any]) -> None:
        self._outbox.restore(state.get("run_ids", {}), state.get("pending", []))


def numeric_metrics(result: dict[str, Any]) -> list[Metric]:
    """The result's top-level numbers (booleans excluded) as MLflow metrics at step `training_iteration`."""
    step, timestamp = int(result[STEP_METRIC]), int(time.time() * 1000)
    return [
        Metric(name, float(value), timestamp, step)
        for name, value in sorted(result.items())
        if isinstance(value, numbers.Real) and not isinstance(value, bool)
    ]
