"""What a client of the model server sends and gets back: images in, class names out.

A request body is read by its content type into a batch of raw pixels (N, 28, 28):
- `image/png`, `image/jpeg`: one picture of any size, colour or grey, made a Fashion-MNIST image (`fmnist.images`);
- `multipart/form-data`: several pictures, one a file field;
- `application/x-npy`: a NumPy array of uint8 pixels, (N, 28, 28) or one (28, 28) image, as `numpy.save` writes it;
- `application/json`: MLflow's `{"inputs": [...]}` of raw pixels.
MLflow's other formats (CSV, Parquet, other JSON) are left to its scoring app; any other type is refused (415). Every answer names the class of each image with its
probability beside MLflow's `predictions` (the ten probabilities, in `class_names` order).
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from fmnist.data import CLASS_NAMES
from fmnist.images import ImageError, ImageTooLarge, to_fashion_mnist

IMAGE_TYPES = ("image/png", "image/jpeg")
NPY_TYPE = "application/x-npy"
MULTIPART_TYPE = "multipart/form-data"
JSON_TYPE = "application/json"
MLFLOW_TYPES = (JSON_TYPE, "text/csv", "application/vnd.apache.parquet")
"""What MLflow's scoring app reads itself."""
MAX_IMAGES = 4096
"""Images in one request at most: a batch is answered in one piece."""


class RequestError(ValueError):
    """A request the server refuses: its HTTP status and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class ContentType:
    """A Content-Type header: the media type, lower-case, and its parameters."""

    media_type: str
    header: str

    @classmethod
    def parse(cls, header: str) -> ContentType:
        return cls(header.split(";", 1)[0].strip().lower(), header)


def pixels(content_type: ContentType, body: bytes) -> np.ndarray | None:
    """The batch of raw pixels (N, 28, 28) a body of this type holds; None for a body left to MLflow's app (JSON other
    than `{"inputs": [...]}`, CSV). RequestError for a body of a known type that cannot be read."""
    if content_type.media_type in IMAGE_TYPES:
        return _images([body])
    if content_type.media_type == MULTIPART_TYPE:
        return _images(_form_files(content_type, body))
    if content_type.media_type == NPY_TYPE:
        return _npy(body)
    if content_type.media_type == JSON_TYPE:
        return _json_inputs(body)
    if content_type.media_type in MLFLOW_TYPES:
        return None
    raise RequestError(415, f"Content-Type {content_type.media_type or '(none)'}: send image/png, image/jpeg, "
                       f"{MULTIPART_TYPE}, {NPY_TYPE}, or MLflow's {', '.join(MLFLOW_TYPES)}")


def named(probabilities: np.ndarray) -> bytes:
    """The JSON answer: MLflow's `predictions` (the ten probabilities of each image), and each image's class and its
    probability, with the class names in the order of the probabilities."""
    probabilities = np.asarray(probabilities, dtype=np.float32)
    best = probabilities.argmax(axis=1) if len(probabilities) else np.empty(0, dtype=int)
    classes = [{"class": CLASS_NAMES[index], "probability": float(row[index])} for index, row in zip(best, probabilities, strict=True)]
    return orjson.dumps({"predictions": probabilities, "classes": classes, "class_names": list(CLASS_NAMES)},
                        option=orjson.OPT_SERIALIZE_NUMPY)


def with_names(answer: bytes) -> bytes:
    """An answer of MLflow's app with the class names added, when it holds ten probabilities an image."""
    try:
        decoded = json.loads(answer)
        probabilities = np.asarray(decoded["predictions"], dtype=np.float32)
    except (ValueError, TypeError, KeyError):
        return answer
    if probabilities.ndim != 2 or probabilities.shape[1] != len(CLASS_NAMES):
        return answer
    return named(probabilities)


def _images(contents: list[bytes]) -> np.ndarray:
    if not contents:
        raise RequestError(400, "no image in the request")
    if len(contents) > MAX_IMAGES:
        raise RequestError(413, f"{len(contents)} images in one request: at most {MAX_IMAGES}")
    batch = []
    for number, content in enumerate(contents, start=1):
        try:
            batch.append(to_fashion_mnist(content))
        except ImageTooLarge as error:
            raise RequestError(413, _which(number, len(contents), str(error))) from None
        except ImageError as error:
            raise RequestError(400, _which(number, len(contents), str(error))) from None
    return np.stack(batch)


def _which(number: int, count: int, reason: str) -> str:
    return f"image {number} of {count}: {reason}" if count > 1 else reason


def _form_files(content_type: ContentType, body: bytes) -> list[bytes]:
    """The files of a multipart form, in order (fields without a file name are left out)."""
    if "boundary=" not in content_type.header.lower():
        raise RequestError(400, "multipart/form-data without a boundary")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.header.encode("latin-1") + b"\r\n\r\n" + body)
    if not message.is_multipart():
        raise RequestError(400, "the multipart body cannot be read")
    return [part.get_payload(decode=True) or b"" for part in message.iter_parts() if part.get_filename() is not None]


def _npy(body: bytes) -> np.ndarray:
    try:
        array = np.load(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise RequestError(400, f"not a .npy array ({str(error).splitlines()[0][:120] if str(error) else type(error).__name__})") from None
    if array.dtype != np.uint8:
        raise RequestError(400, f"a .npy batch holds uint8 pixels, got {array.dtype}")
    if array.shape == (28, 28):
        array = array[np.newaxis]
    if array.ndim != 3 or array.shape[1:] != (28, 28):
        raise RequestError(400, f"a .npy batch is (N, 28, 28) or (28, 28), got {array.shape}")
    if len(array) > MAX_IMAGES:
        raise RequestError(413, f"{len(array)} images in one request: at most {MAX_IMAGES}")
    return array


def _json_inputs(body: bytes) -> np.ndarray | None:
    """`{"inputs": [...numbers...]}` as an array; None for MLflow's other JSON formats (and inputs it should judge)."""
    try:
        request: Any = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        if any(word in str(error).lower() for word in ("depth", "recursion")):
            raise RequestError(400, "the JSON is nested too deeply") from None
        raise RequestError(400, f"the body is not JSON ({str(error).splitlines()[0][:120]})") from None
    if isinstance(request, dict) and set(request) == {"inputs"}:
        try:
            return np.asarray(request["inputs"], dtype=np.float32)
        except (ValueError, TypeError, RecursionError):
            pass
    try:  # MLflow's app parses the body again with Python's json, which a deeply nested one overflows
        json.loads(body)
    except RecursionError:
        raise RequestError(400, "the JSON is nested too deeply") from None
    return None
