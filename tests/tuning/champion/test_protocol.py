"""The model server's bodies: pictures, forms, .npy batches and MLflow's JSON in; class names out; bad bodies named."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from fmnist.data import CLASS_NAMES
from fmnist.images import png
from tuning.champion.protocol import MAX_IMAGES, ContentType, RequestError, named, pixels, with_names


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def form(files: list[bytes], boundary: str = "b0undary") -> tuple[ContentType, bytes]:
    parts = [f"--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nnot a file\r\n".encode()]
    for number, content in enumerate(files):
        parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{number}.png\"\r\n"
                     "Content-Type: image/png\r\n\r\n".encode() + content + b"\r\n")
    return ContentType.parse(f"multipart/form-data; boundary={boundary}"), b"".join(parts) + f"--{boundary}--\r\n".encode()


@pytest.fixture(scope="module")
def images(dataset) -> np.ndarray:
    return dataset.test.images[:3]


def test_a_picture_a_form_and_a_npy_batch_become_the_same_pixels(images: np.ndarray) -> None:
    np.testing.assert_array_equal(pixels(ContentType.parse("image/png"), png(images[0])), images[:1])
    np.testing.assert_array_equal(pixels(*form([png(image) for image in images])), images)
    np.testing.assert_array_equal(pixels(ContentType.parse("application/x-npy"), npy(images)), images)
    np.testing.assert_array_equal(pixels(ContentType.parse("application/x-npy"), npy(images[0])), images[:1])
    as_json = json.dumps({"inputs": images.tolist()}).encode()
    np.testing.assert_array_equal(pixels(ContentType.parse("application/json; charset=utf-8"), as_json), images)


def test_mlflows_other_formats_are_left_to_its_app() -> None:
    assert pixels(ContentType.parse("application/json"), b'{"dataframe_split": {"data": [[1]]}}') is None
    assert pixels(ContentType.parse("text/csv"), b"1,2\n") is None


@pytest.mark.parametrize(("content_type", "body", "status", "reason"), [
    ("image/png", b"", 400, "the image is empty"),
    ("image/jpeg", b"this is text", 400, "not a PNG or JPEG image"),
    ("application/x-npy", b"\x93NUMPY nonsense", 400, "not a .npy array"),
    ("application/x-npy", npy(np.zeros((2, 28, 28), dtype=np.float32)), 400, "a .npy batch holds uint8 pixels, got float32"),
    ("application/x-npy", npy(np.zeros((2, 28), dtype=np.uint8)), 400, "a .npy batch is (N, 28, 28) or (28, 28), got (2, 28)"),
    ("application/x-npy", npy(np.zeros((MAX_IMAGES + 1, 28, 28), dtype=np.uint8)), 413, f"{MAX_IMAGES + 1} images in one request"),
    ("application/json", b"[" * 100_000 + b"]" * 100_000, 400, "the JSON is nested too deeply"),
    ("application/json", b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, "the JSON is nested too deeply"),
    ("application/json", b'{"inputs": [1, 2', 400, "the body is not JSON"),
    ("multipart/form-data", b"--x\r\n", 400, "multipart/form-data without a boundary"),
    ("application/octet-stream", b"\x89PNG", 415, "Content-Type application/octet-stream: send image/png, image/jpeg"),
    ("", b"\x89PNG", 415, "Content-Type (none): send image/png"),
], ids=lambda value: value[:40] if isinstance(value, str) else None)
def test_a_bad_body_is_a_4xx_with_a_one_line_reason(content_type: str, body: bytes, status: int, reason: str) -> None:
    with pytest.raises(RequestError) as raised:
        pixels(ContentType.parse(content_type), body)
    assert raised.value.status == status and str(raised.value).startswith(reason) and "\n" not in str(raised.value)


def test_a_form_names_the_picture_it_cannot_read(images: np.ndarray) -> None:
    with pytest.raises(RequestError, match=r"^image 2 of 3: not a PNG or JPEG image$"):
        pixels(*form([png(images[0]), b"not a picture", png(images[2])]))
    with pytest.raises(RequestError, match="^no image in the request$"):
        pixels(*form([]))


def test_every_answer_names_each_images_class_beside_mlflows_predictions() -> None:
    probabilities = np.full((2, 10), 0.02, dtype=np.float32)
    probabilities[0, 9], probabilities[1, 1] = 0.82, 0.82
    answer = json.loads(named(probabilities))
    assert answer["class_names"] == list(CLASS_NAMES)
    assert [entry["class"] for entry in answer["classes"]] == ["Ankle boot", "Trouser"]
    assert answer["classes"][0]["probability"] == pytest.approx(0.82)
    np.testing.assert_allclose(answer["predictions"], probabilities)
    mlflow_answer = json.dumps({"predictions": probabilities.tolist()}).encode()
    assert json.loads(with_names(mlflow_answer))["classes"] == answer["classes"]
    assert with_names(b'{"predictions": [1, 2]}') == b'{"predictions": [1, 2]}', "not ten probabilities an image"
