"""The MLflow callback on a real (SQLite) tracking store, driven as Tune drives it: start, results, end,
and a restart from the saved state. No model is trained."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from ray.tune.experiment import Trial

from tuning.optimization.objective import CONFUSION_MATRIX_KEY
from tuning.tracking.mlflow_callback import MLflowTrialsCallback, numeric_metrics
from tuning.tracking.mlflow_outbox import TrialWrite
from tuning.tracking.parent_run import PARENT_RUN_TAG


def _result(epoch: int, accuracy: float) -> dict:
    matrix = (np.eye(10, dtype=int) * 5).tolist()
    return {"training_iteration": epoch, "epoch": epoch, "val_accuracy": accuracy, "done": False,
            "trial_id": "t", CONFUSION_MATRIX_KEY: json.dumps(matrix)}


@pytest.fixture
def store(tmp_path: Path) -> tuple[str, str, str]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("callback-test", artifact_location=(tmp_path / "artifacts").as_uri())
    parent_run_id = client.create_run(experiment_id, run_name="search").info.run_id
    return uri, experiment_id, parent_run_id


def test_a_trial_gets_one_nested_run_with_params_metrics_and_images(store: tuple[str, str, str]) -> None:
    uri, experiment_id, parent_run_id = store
    callback = MLflowTrialsCallback(uri, experiment_id, parent_run_id, inputs=[])
    trial = Trial("train_cnn", config={"learning_rate": 0.001, "optimizer": "adam"}, trial_id="aaa00001", stub=True)
    callback.log_trial_start(trial)
    callback.log_trial_result(1, trial, _result(1, 0.80))
    callback.log_trial_result(2, trial, _result(2, 0.85))
    callback.log_trial_end(trial)
    assert callback.flush(timeout_s=60)

    client = MlflowClient(uri)
    run = client.get_run(callback.run_ids["aaa00001"])
    assert run.data.tags[PARENT_RUN_TAG] == parent_run_id and run.data.tags["trial_id"] == "aaa00001"
    assert run.data.params == {"learning_rate": "0.001", "optimizer": "adam"}
    assert [(point.step, point.value) for point in client.get_metric_history(run.info.run_id, "val_accuracy")] == [
        (1, 0.80), (2, 0.85)]
    assert "done" not in run.data.metrics and "trial_id" not in run.data.metrics
    assert [a.path for a in client.list_artifacts(run.info.run_id, "confusion_matrix")] == [
        "confusion_matrix/epoch_001.png", "confusion_matrix/epoch_002.png"]
    assert run.info.status == "FINISHED"


def test_a_restored_callback_logs_into_the_run_the_trial_started(store: tuple[str, str, str]) -> None:
    """What `Tuner.restore` does: a new callback object with the saved state, and a new Trial object."""
    uri, experiment_id, parent_run_id = store
    before = MLflowTrialsCallback(uri, experiment_id, parent_run_id, inputs=[])
    before.log_trial_start(Trial("train_cnn", config={"seed": 1}, trial_id="bbb00002", stub=True))
    before.log_trial_result(1, Trial("train_cnn", config={"seed": 1}, trial_id="bbb00002", stub=True), _result(1, 0.7))
    assert before.flush(timeout_s=60)
    state = pickle.loads(pickle.dumps(before.get_state()))

    after = MLflowTrialsCallback(uri, experiment_id, parent_run_id, inputs=[])
    after.set_state(state)
    restored_trial = Trial("train_cnn", config={"seed": 1}, trial_id="bbb00002", stub=True)
    after.log_trial_start(restored_trial)
    assert after.flush(timeout_s=60)
    assert MlflowClient(uri).get_run(after.run_ids["bbb00002"]).info.status == "RUNNING"
    after.log_trial_result(2, restored_trial, _result(2, 0.75))
    after.log_trial_end(restored_trial)
    assert after.flush(timeout_s=60)

    mlflow.set_tracking_uri(uri)
    runs = MlflowClient(uri).search_runs([experiment_id], filter_string=f"tags.`{PARENT_RUN_TAG}` = '{parent_run_id}'")
    assert len(runs) == 1 and runs[0].info.run_id == before.run_ids["bbb00002"]
    steps = [point.step for point in MlflowClient(uri).get_metric_history(runs[0].info.run_id, "val_accuracy")]
    assert steps == [1, 2]


def test_writes_sent_again_after_a_resume_leave_one_run_and_one_point_per_epoch(store: tuple[str, str, str]) -> None:
    """The driver died after its queued writes reached MLflow but before Tune saved that they had: the
    resumed search sends them again from the saved state, and MLflow keeps one run and one point per epoch."""
    uri, experiment_id, parent_run_id = store
    trial = Trial("train_cnn", config={"seed": 2}, trial_id="ccc00003", stub=True)
    saved_state = {"run_ids": {}, "pending": [
        TrialWrite(trial.trial_id, "start", (str(trial), [("seed", "2")])),
        TrialWrite(trial.trial_id, "metrics", numeric_metrics(_result(1, 0.6))),
        TrialWrite(trial.trial_id, "metrics", numeric_metrics(_result(2, 0.65))),
    ]}
    for attempt in range(2):
        callback = MLflowTrialsCallback(uri, experiment_id, parent_run_id, inputs=[])
        callback.set_state(pickle.loads(pickle.dumps(saved_state)))
        if attempt:
            callback.log_trial_end(trial)
        assert callback.flush(timeout_s=60)
    client = MlflowClient(uri)
    runs = client.search_runs([experiment_id], filter_string=f"tags.`{PARENT_RUN_TAG}` = '{parent_run_id}'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED" and runs[0].data.params == {"seed": "2"}
    assert [(point.step, point.value) for point in client.get_metric_history(runs[0].info.run_id, "val_accuracy")] == [
        (1, 0.6), (2, 0.65)]


def test_an_epoch_run_again_after_a_driver_crash_keeps_its_first_values(store: tuple[str, str, str]) -> None:
    """Tune restored the trial from state saved before its epoch 2 was reported: epoch 2 comes again, with
    other values. The run keeps one point per epoch, the first one, and its first confusion matrix."""
    uri, experiment_id, parent_run_id = store
    trial = Trial("train_cnn", config={"seed": 3}, trial_id="ddd00004", stub=True)
    before = MLflowTrialsCallback(uri, experiment_id, parent_run_id, inputs=[])
    before.log_trial_start(trial)
    saved_state = pickle.loads(pickle.dumps(before.get_state()))
    before.log_trial_result(1, trial, _result(1, 0.6))
    before.log_trial_result(2, trial, _result(2, 0.65))
    assert before.flush(timeout_s=60)
    run_id = before.run_ids[trial.trial_id]
    client = MlflowClient(uri)
    first_image = client.download_artifacts(run_id, "confusion_matrix/epoch_002.png", str(Path(uri[len("sqlite:///"):]).parent))
    first_image_bytes = Path(first_image).read_bytes()

    after = MLflowTrialsCallback(uri, experiment_id, parent_run_id, inputs=[])
    after.set_state(saved_state)
    after.log_trial_start(trial)
    replay = {**_result(2, 0.55), CONFUSION_MATRIX_KEY: json.dumps((np.eye(10, dtype=int) * 7).tolist())}
    after.log_trial_result(2, trial, replay)
    after.log_trial_result(3, trial, _result(3, 0.7))
    after.log_trial_end(trial)
    assert after.flush(timeout_s=60)

    assert [(point.step, point.value) for point in client.get_metric_history(run_id, "val_accuracy")] == [
        (1, 0.6), (2, 0.65), (3, 0.7)]
    again = client.download_artifacts(run_id, "confusion_matrix/epoch_002.png", str(Path(uri[len("sqlite:///"):]).parent / "again"))
    assert Path(again).read_bytes() == first_image_bytes
    assert client.get_run(run_id).info.status == "FINISHED"


def test_a_trial_taking_up_a_crashed_drivers_orphan_goes_on_in_its_run(store: tuple[str, str, str]) -> None:
    """The driver started a trial after its last save and died: the resumed search's new trial takes up the orphan's
    name (its Optuna trial) and continues its run, which ends FINISHED under the new trial's id."""
    uri, experiment_id, parent_run_id = store
    orphan = Trial("train_cnn", config={"seed": 4}, trial_id="eee00005", stub=True, trial_name_creator=lambda _: "trial-7")
    crashed = MLflowTrialsCallback(uri, experiment_id, parent_run_id, inputs=[])
    saved_state = pickle.loads(pickle.dumps(crashed.get_state()))
    crashed.log_trial_start(orphan)
    crashed.log_trial_result(1, orphan, _result(1, 0.6))
    assert crashed.flush(timeout_s=60)

    successor = Trial("train_cnn", config={"seed": 4}, trial_id="fff00006", stub=True, trial_name_creator=lambda _: "trial-7")
    resumed = MLflowTrialsCallback(uri, experiment_id, parent_run_id, inputs=[])
    resumed.set_state(saved_state)
    resumed.log_trial_start(successor)
    resumed.log_trial_result(1, successor, _result(1, 0.5))
    resumed.log_trial_result(2, successor, _result(2, 0.7))
    resumed.log_trial_end(successor)
    assert resumed.flush(timeout_s=60)

    client = MlflowClient(uri)
    (run,) = client.search_runs([experiment_id], filter_string=f"tags.`{PARENT_RUN_TAG}` = '{parent_run_id}'")
    assert run.info.run_name == "trial-7" and run.info.status == "FINISHED" and run.data.tags["trial_id"] == "fff00006"
    assert [(point.step, point.value) for point in client.get_metric_history(run.info.run_id, "val_accuracy")] == [
        (1, 0.6), (2, 0.7)]
