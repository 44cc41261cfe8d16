"""The model server: the champion over HTTP, the version named in every answer, the alias followed without a restart."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from fmnist.config import ModelConfig
from fmnist.data import FashionMNIST
from fmnist.model import build
from tests.tuning.conftest import free_port, search_environment, wait_for_http
from tuning.champion.load import run_load
from tuning.champion.model_server import ModelReference, ModelUriError, short_error, short_reason
from tuning.champion.registry import CHAMPION_ALIAS, ValidationScore, register

pytestmark = pytest.mark.slow  # starts a model server on TensorFlow

MODEL = "fmnist-cnn-served"


def _register(tracking_uri: str, dataset: FashionMNIST, config: ModelConfig, validation_accuracy: float) -> str:
    """A real CNN (untrained: its speed and answers are what is served) registered as the search registers one, with
    `validation_accuracy` as its score (the registry chooses the champion by it)."""
    client = MlflowClient(tracking_uri)
    artifacts = Path(tracking_uri.removeprefix("sqlite:///")).with_name("artifacts")
    experiment = client.get_experiment_by_name("serving") or client.get_experiment(
        client.create_experiment("serving", artifact_location=artifacts.as_uri()))
    run_id = client.create_run(experiment.experiment_id).info.run_id
    scored = ValidationScore("val_accuracy", validation_accuracy, 0.003, "validation-images")
    registration = register(run_id, build(config), dataset.test, 0.1, scored, MODEL)
    client.set_terminated(run_id)
    return registration.version


@pytest.fixture(scope="module")
def served(dataset: FashionMNIST, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A model server following `champion` of a registry in a SQLite file; yields (its URL, the tracking URI)."""
    folder = tmp_path_factory.mktemp("served")
    tracking_uri = f"sqlite:///{folder / 'mlflow.db'}"
    previous_tracking_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)  # the registry follows it; setting the registry's URI would outlive the module
    assert _register(tracking_uri, dataset, ModelConfig(), validation_accuracy=0.5) == "1"
    port = free_port()
    log_path = folder / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "tuning.champion.model_server", "--port", str(port), "--poll-s", "1",
             "--model-uri", f"models:/{MODEL}@{CHAMPION_ALIAS}"],
            cwd=folder, env=search_environment(MLFLOW_TRACKING_URI=tracking_uri), stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ping", server, log_path)
        yield f"http://127.0.0.1:{port}", tracking_uri
    finally:
        server.terminate()
        server.wait(timeout=30)
        mlflow.set_tracking_uri(previous_tracking_uri)


def _post(url: str, payload: dict) -> tuple[int, dict[str, str], dict]:
    request = urllib.request.Request(f"{url}/invocations", json.dumps(payload).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_the_server_answers_as_the_model_does_and_names_its_version(served: tuple[str, str], dataset: FashionMNIST) -> None:
    url, _ = served
    images = dataset.test.images[:3]
    status, headers, answer = _post(url, {"inputs": images.astype(int).tolist()})
    assert status == 200 and headers["x-model-version"] == "1"
    in_process = mlflow.pyfunc.load_model(f"models:/{MODEL}/1").predict(images.astype(np.float32))
    np.testing.assert_allclose(np.asarray(answer["predictions"]), in_process, atol=1e-5)


def test_a_bad_request_gets_its_reason_in_one_short_line(served: tuple[str, str], dataset: FashionMNIST) -> None:
    url, _ = served
    images = dataset.test.images[:2].astype(int)
    images[0, 0, 0] = 300
    status, headers, answer = _post(url, {"inputs": images.tolist()})
    assert status == 400 and headers["x-model-version"] == "1"
    assert answer == {"error_code": "INVALID_PARAMETER_VALUE", "message": "pixel values must be finite and in 0..255, got 0..300"}
    status, _, answer = _post(url, {"inputs": dataset.test.images[:1, :5].astype(int).tolist()})  # 28x5: the wrong shape
    assert status == 400 and len(answer["message"]) <= 300 and "\n" not in answer["message"], answer
    assert "[[" not in answer["message"], "the request came back in the message"


def test_the_server_follows_the_alias_under_a_stream_of_requests(served: tuple[str, str], dataset: FashionMNIST) -> None:
    """A better model registered mid-stream takes `champion`; the server switches without failing a request."""
    url, tracking_uri = served
    streamed: dict[str, object] = {}
    stream = threading.Thread(target=lambda: streamed.update(result=run_load(url, dataset.test.images[:1], clients=4, seconds=30)))
    stream.start()
    time.sleep(3)
    assert _register(tracking_uri, dataset, ModelConfig(filters_1=48, dense_units=128), validation_accuracy=0.9) == "2"
    assert str(MlflowClient(tracking_uri).get_model_version_by_alias(MODEL, CHAMPION_ALIAS).version) == "2"
    stream.join()
    result = streamed["result"]
    assert result.requests > 100 and not result.errors, result.line()
    switched = result.versions.index("2")
    assert set(result.versions[:switched]) == {"1"} and set(result.versions[switched:]) <= {"1", "2"}
    assert result.versions[-20:] == ["2"] * 20, "the server did not settle on the new champion"


def test_model_uris_and_error_bodies() -> None:
    assert ModelReference.parse("models:/fmnist-cnn@champion") == ModelReference("fmnist-cnn", "champion", None)
    assert ModelReference.parse("models:/fmnist-cnn/3") == ModelReference("fmnist-cnn", None, "3")
    with pytest.raises(ModelUriError, match="--model-uri runs:/abc/model: expected models:/<name>@<alias>"):
        ModelReference.parse("runs:/abc/model")
    echoed = ("Failed to predict data '[[0, 1]]'. \nError: Failed to enforce schema of data '[[0, 1]]' with schema "
              "'[Tensor('float32', (-1, 28, 28))]'. Error: Shape of input (1, 2) does not match expected shape (-1, 28, 28).")
    mlflow_body = json.dumps({"error_code": "BAD_REQUEST", "message": echoed}).encode()
    assert json.loads(short_error(mlflow_body)) == {
        "error_code": "BAD_REQUEST", "message": "Shape of input (1, 2) does not match expected shape (-1, 28, 28)."}
    unparsed = "Failed to parse input from JSON. Ensure that input is a valid JSON formatted string. Error: 'Expecting value'"
    assert short_reason(unparsed) == unparsed, "a message that echoes nothing keeps its words"
    assert short_reason("A first sentence. " * 30) == ("A first sentence. " * 16).strip(), "cut at a sentence's end"
