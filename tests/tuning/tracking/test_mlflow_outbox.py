"""MLflow goes down while trials report: the callback never blocks, and once the server is back every
write arrives, in order, once. A real `mlflow server` is stopped and started again on the same port."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from ray.tune.experiment import Trial

from tuning.optimization.objective import CONFUSION_MATRIX_KEY
from tuning.testing.services import free_port
from tuning.tracking.mlflow_callback import MLflowTrialsCallback
from tuning.tracking.parent_run import PARENT_RUN_TAG

pytestmark = pytest.mark.slow


class RestartableServer:
    """`mlflow server` on a SQLite store and a fixed port, which the test stops and starts."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{self.folder / 'mlflow.db'}",
             "--serve-artifacts", "--artifacts-destination", str(self.folder / "artifacts"), "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(self.uri + "/health", timeout=2):
                    return
            except OSError:
                assert self.process.poll() is None and time.monotonic() < deadline, "mlflow server did not start"
                time.sleep(0.5)

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=60)


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RestartableServer]:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")  # let the outbox, not the client, do the waiting
    running = RestartableServer(tmp_path)
    running.start()
    yield running
    if running.process and running.process.poll() is None:
        running.stop()


def _result(epoch: int) -> dict:
    matrix = (np.eye(10, dtype=int) * (5 + epoch)).tolist()
    return {"training_iteration": epoch, "epoch": epoch, "val_accuracy": 0.5 + epoch / 10, CONFUSION_MATRIX_KEY: json.dumps(matrix)}


def test_training_goes_on_while_mlflow_is_down_and_nothing_is_lost(server: RestartableServer) -> None:
    client = MlflowClient(server.uri)
    experiment_id = client.create_experiment("outage")
    parent_run_id = client.create_run(experiment_id, run_name="search").info.run_id
    callback = MLflowTrialsCallback(server.uri, experiment_id, parent_run_id, inputs=[])
    trial = Trial("train_cnn", config={"seed": 3}, trial_id="ddd00004", stub=True)
    callback.log_trial_start(trial)
    callback.log_trial_result(1, trial, _result(1))
    assert callback.flush(timeout_s=60)

    server.stop()
    started = time.monotonic()
    for epoch in (2, 3):
        callback.log_trial_result(epoch, trial, _result(epoch))
    callback.log_trial_end(trial)
    # Each result draws its confusion matrix here (1-2 s on a loaded 2-core host); waiting for the server
    # would take minutes (the old callbacks blocked for 129 s).
    assert time.monotonic() - started < 15, "a callback waited for the unreachable server"
    assert not callback.flush(timeout_s=5), "the writes cannot have been sent while the server was down"

    server.start()
    assert callback.flush(timeout_s=180)
    runs = client.search_runs([experiment_id], filter_string=f"tags.`{PARENT_RUN_TAG}` = '{parent_run_id}'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    history = client.get_metric_history(runs[0].info.run_id, "val_accuracy")
    assert [(point.step, point.value) for point in history] == [(1, 0.6), (2, 0.7), (3, 0.8)]
    images = [artifact.path for artifact in client.list_artifacts(runs[0].info.run_id, "confusion_matrix")]
    assert images == ["confusion_matrix/epoch_001.png", "confusion_matrix/epoch_002.png", "confusion_matrix/epoch_003.png"]
