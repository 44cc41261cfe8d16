"""The model server: the champion over HTTP, the version named in every answer, the alias followed without a restart."""

from __future__ import annotations

import io
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
from fmnist.images import png
from fmnist.model import build
from tests.tuning.conftest import search_environment
from tuning.champion.load import run_load
from tuning.champion.model_server import ModelReference, ModelUriError, short_error, short_reason
from tuning.champion.registry import CHAMPION_ALIAS, ValidationScore, register
from tuning.testing.services import free_port, wait_for_http

pytestmark = pytest.mark.slow  # starts a model server on TensorFlow

MODEL = "fmnist-cnn-served"
CHROMIUM = "/usr/bin/chromium"  # Debian's chromium package
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def npy(images: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, images)
    return buffer.getvalue()


def form(pictures: list[bytes]) -> tuple[bytes, str]:
    """A multipart form with each picture as a file field; (body, content type)."""
    parts = [b'--edge\r\nContent-Disposition: form-data; name="image"; filename="%d.png"\r\nContent-Type: image/png\r\n\r\n'
             % number + picture + b"\r\n" for number, picture in enumerate(pictures)]
    return b"".join(parts) + b"--edge--\r\n", "multipart/form-data; boundary=edge"


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


def _post(url: str, payload: dict | bytes, content_type: str = "application/json") -> tuple[int, dict[str, str], dict]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    request = urllib.request.Request(f"{url}/invocations", body, {"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_pictures_forms_and_npy_batches_are_answered_as_their_pixels_with_class_names(
        served: tuple[str, str], dataset: FashionMNIST) -> None:
    """The dataset's own images written as PNG: the same answer as their pixels in JSON, each class named."""
    url, _ = served
    images = dataset.test.images[:3]
    _, _, as_json = _post(url, {"inputs": images.astype(int).tolist()})
    assert [entry["class"] for entry in as_json["classes"]] == [
        as_json["class_names"][int(np.argmax(row))] for row in as_json["predictions"]]
    status, _, as_png = _post(url, png(images[0]), "image/png")
    assert status == 200 and as_png["classes"][0]["class"] == as_json["classes"][0]["class"]
    np.testing.assert_allclose(as_png["predictions"], as_json["predictions"][:1], atol=1e-5)
    for body, content_type in (form([png(image) for image in images]), (npy(images), "application/x-npy")):
        status, _, answer = _post(url, body, content_type)
        assert status == 200, answer
        np.testing.assert_allclose(answer["predictions"], as_json["predictions"], atol=1e-5)


def test_bad_uploads_get_a_4xx_with_a_one_line_reason_and_the_server_goes_on(served: tuple[str, str], dataset: FashionMNIST) -> None:
    url, _ = served
    boot = png(np.kron(dataset.test.images[0], np.ones((20, 20), dtype=np.uint8)))
    huge = png(np.zeros((5000, 10000), dtype=np.uint8))
    for body, content_type, status, reason in (
        (b"%PDF-1.4 not an image", "image/png", 400, "not a PNG or JPEG image"),
        (boot[: len(boot) // 2], "image/png", 400, "the image cannot be decoded"),
        (huge, "image/png", 413, "the image is 10000x5000: at most 25,000,000 pixels are read"),
        (b"", "image/jpeg", 400, "the image is empty"),
        (png(dataset.test.images[0]), "application/octet-stream", 415, "Content-Type application/octet-stream: send image/png"),
        (b"1,2\n", "text/csv", 400, ""),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "the JSON is nested too deeply"),
        (b"\0" * (21 * 2**20), "image/png", 413, "the request is larger than the server takes"),
    ):
        answered, _, answer = _post(url, body, content_type)
        assert (answered, answer["message"][: len(reason)]) == (status, reason), (content_type, answer)
        assert "\n" not in answer["message"] and len(answer["message"]) <= 300
    status, _, _ = _post(url, png(dataset.test.images[0]), "image/png")
    assert status == 200, "the server stopped answering"


def test_the_page_names_a_picture_in_a_real_browser(served: tuple[str, str], dataset: FashionMNIST, tmp_path: Path) -> None:
    """Headless Chromium opens the page, uploads a dataset image as PNG and reads the class the server named."""
    from playwright.sync_api import sync_playwright

    url, _ = served
    picture = tmp_path / "garment.png"
    picture.write_bytes(png(dataset.test.images[0]))
    _, headers, expected = _post(url, picture.read_bytes(), "image/png")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(url + "/")
            page.set_input_files("#file", str(picture))
            page.wait_for_selector("#result tr", timeout=30_000)
            first_row = page.locator("#result tr").first.inner_text()
            version = page.locator("#version").inner_text()
        finally:
            browser.close()
    assert first_row.split("\t")[0] == expected["classes"][0]["class"]
    assert version == f"model version {headers['x-model-version']}"


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
