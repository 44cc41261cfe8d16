"""`python -m tuning.champion.model_server`: the registry's champion over HTTP, following its alias without a restart.

`POST /invocations` takes a PNG or JPEG, several in a multipart form, a .npy batch of pixels, or MLflow's JSON
(`tuning.champion.protocol`), and answers each image's class name and probability beside MLflow's `predictions`.
`GET /` is a page to try it with a picture. Each model version is served by MLflow's own scoring app
(`mlflow.pyfunc.scoring_server`, what `mlflow models serve` runs: the same `/invocations` protocol, signature checks and
errors), but the bodies above go straight to the model as one array: MLflow's parser copies every pixel in Python first
and takes longer than the model itself. A thread asks the registry every `--poll-s` seconds which version the alias
names; a new one is loaded and warmed up beside the one serving, then takes the next requests, while requests already
under way finish on the old one. Every response names the version that answered (`X-Model-Version`); a 4xx answer gives
its reason in one short line, not the request back; a body over `--max-request-mb` is refused with 413.

Example:
    python -m tuning.champion.model_server --tracking-uri http://127.0.0.1:5000 --port 5001
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import sys
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import scoring_server
from mlflow.tracking import MlflowClient

from fmnist.command_line import OneLineErrorParser
from tuning.champion import protocol
from tuning.champion.registry import CHAMPION_ALIAS
from tuning.runtime import library_output
from tuning.runtime.command_line import TRACKING_URI_HELP, listen_address_error
from tuning.runtime.error_text import first_line
from tuning.runtime.stores import DEFAULT_MODEL_NAME, resolve_tracking_uri

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")
VERSION_HEADER = b"x-model-version"
MAX_REQUEST_BYTES = 20 * 1024 * 1024
PAGE_FILE = "page.html"
DRAINED_LIMITS = 4
REASON_LIMIT = 300
ECHOED_REQUEST = ("Failed to predict data '", "Failed to enforce schema of data '")
"""How MLflow's messages start when they hold the whole request before the reason."""
POLL_S = 10.0


class ModelUriError(ValueError):
    """A model URI that names neither an alias nor a version."""


@dataclass(frozen=True)
class ModelReference:
    """A registered model and the alias to follow, or a fixed version."""

    name: str
    alias: str | None
    version: str | None

    @classmethod
    def parse(cls, uri: str) -> ModelReference:
        match = MODEL_URI.match(uri)
        if match is None:
            raise ModelUriError(f"--model-uri {uri}: expected models:/<name>@<alias> or models:/<name>/<version>")
        return cls(match["name"], match["alias"], match["version"])

    def current_version(self, client: MlflowClient) -> str:
        """The version the alias names now (or the fixed one)."""
        if self.alias is None:
            return str(self.version)
        return str(client.get_model_version_by_alias(self.name, self.alias).version)


@dataclass(frozen=True)
class ServedVersion:
    """One loaded model version and MLflow's scoring app around it."""

    version: str
    model: mlflow.pyfunc.PyFuncModel
    app: ASGIApp
    dtype: np.dtype

    def predict_named(self, images: np.ndarray) -> tuple[int, bytes]:
        """(status, JSON answer) for a batch of raw pixels: the classes named (`protocol.named`), or MLflow's error."""
        try:
            probabilities = self.model.predict(np.asarray(images, dtype=self.dtype))
        except MlflowException as error:
            return error.get_http_status_code(), error.serialize_as_json().encode()
        return 200, protocol.named(probabilities)


def load_version(name: str, version: str) -> ServedVersion:
    """Load a version, answer one request in process (Keras builds its predict function), and wrap it in MLflow's app."""
    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    spec = model.metadata.get_input_schema().inputs[0]
    model.predict(np.zeros((1, *spec.shape[1:]), dtype=spec.type))
    return ServedVersion(version, model, scoring_server.init(model), spec.type)


class ChampionServer:
    """An ASGI app that hands each request to the version being served and names it in the response."""

    def __init__(self, reference: ModelReference, poll_s: float = POLL_S, max_request_bytes: int = MAX_REQUEST_BYTES) -> None:
        self.reference, self.poll_s, self.max_request_bytes = reference, poll_s, max_request_bytes
        self.served: ServedVersion | None = None
        self._last_problem: str | None = None

    def start_following(self) -> threading.Thread:
        """Load the current version now (if the registry answers), then check for a new one every `poll_s`."""
        self.refresh()
        thread = threading.Thread(target=self._follow, name="follow-alias", daemon=True)
        thread.start()
        return thread

    def refresh(self) -> None:
        """Serve the version the registry names now; a registry that does not answer leaves the served one as it is."""
        try:
            version = self.reference.current_version(MlflowClient())
            if self.served is None or self.served.version != version:
                self.served = load_version(self.reference.name, version)
                print(f"serving {self.reference.name} version {version}"
                      + (f" (alias {self.reference.alias})" if self.reference.alias else ""), flush=True)
            self._last_problem = None
        except MlflowException as error:
            problem = first_line(error)
            if problem != self._last_problem:  # one line per new problem, not one per poll
                print(f"cannot load {self.reference.name}: {problem}; "
                      f"{'still serving version ' + self.served.version if self.served else 'nothing to serve yet'}",
                      file=sys.stderr, flush=True)
            self._last_problem = problem

    def _follow(self) -> None:
        while True:
            time.sleep(self.poll_s)
            self.refresh()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _answer_lifespan(receive, send)
            return
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and scope["path"] == "/":
            await _send_bytes(send, 200, page(), b"text/html; charset=utf-8")
            return
        served = self.served
        if served is None:
            await _send_json(send, 503, {"error_code": "TEMPORARILY_UNAVAILABLE",
                                         "message": f"no version of {self.reference.name} to serve yet"})
            return
        send = _naming_version(send, served.version)
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/invocations":
            try:
                body = await _read_body(scope, receive, self.max_request_bytes)
                images = await asyncio.to_thread(protocol.pixels, _content_type(scope), body)
            except protocol.RequestError as error:
                code = "REQUEST_TOO_LARGE" if error.status == 413 else "BAD_REQUEST"
                await _send_json(send, error.status, {"error_code": code, "message": str(error)})
                return
            if images is not None:
                await _send_bytes(send, *await asyncio.to_thread(served.predict_named, images))
                return
            receive = _replay(body)
        await served.app(scope, receive, send)


def _naming_version(send: Send, version: str) -> Send:
    """`send` with the version's header on the response, a 4xx body cut to its reason, and the classes named in an
    answer of MLflow's app."""
    held: list[Message] = []

    async def send_named(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), (VERSION_HEADER, version.encode())]
            if 400 <= message["status"] < 500 or _is_json_answer(message):
                held.append(message)
                return
        elif held and message["type"] == "http.response.body":
            held.append(message)
            if message.get("more_body"):
                return
            whole = b"".join(part.get("body", b"") for part in held[1:])
            start = held[0]
            body = short_error(whole) if start["status"] >= 400 else protocol.with_names(whole)
            start["headers"] = [(key, value) for key, value in start["headers"] if key.lower() != b"content-length"]
            start["headers"].append((b"content-length", str(len(body)).encode()))
            held.clear()
            await send(start)
            await send({"type": "http.response.body", "body": body})
            return
        await send(message)

    return send_named


def short_error(body: bytes) -> bytes:
    """MLflow's error body with its message cut to the reason (MLflow puts the whole request before it); a plain-text
    one as JSON."""
    try:
        error = json.loads(body)
    except ValueError:
        error = {"message": body.decode("utf-8", errors="replace")}
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return body
    return json.dumps({"error_code": error.get("error_code", "BAD_REQUEST"), "message": short_reason(error["message"])}).encode()


def short_reason(message: str) -> str:
    """The reason without the request MLflow echoes before it: its first line, whole sentences within REASON_LIMIT."""
    while message.startswith(ECHOED_REQUEST) and "Error: " in message:
        message = message.split("Error: ", 1)[1]
    reason = (message.strip().splitlines() or [""])[0]
    if len(reason) <= REASON_LIMIT:
        return reason
    cut = reason[:REASON_LIMIT]
    return cut[: cut.rfind(". ") + 1] if ". " in cut else cut


async def _send_json(send: Send, status: int, content: dict[str, str]) -> None:
    await _send_bytes(send, status, json.dumps(content).encode())


async def _send_bytes(send: Send, status: int, body: bytes, content_type: bytes = b"application/json") -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _is_json_answer(start: Message) -> bool:
    return start["status"] == 200 and dict(start.get("headers", [])).get(b"content-type", b"").startswith(b"application/json")


def _content_type(scope: Scope) -> protocol.ContentType:
    return protocol.ContentType.parse(dict(scope.get("headers", [])).get(b"content-type", b"").decode("latin-1"))


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request's body; RequestError (413) past `limit` bytes. The rest of a body too large is read and dropped (up to
    `DRAINED_LIMITS` times the limit), so that a client still sending it reads the answer instead of a reset."""
    chunks, size, more = [], 0, True
    while more and size <= DRAINED_LIMITS * limit:
        message = await receive()
        chunk, more = message.get("body", b""), bool(message.get("more_body"))
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
    if size > limit:
        raise protocol.RequestError(413, f"the request is larger than the server takes ({limit:,} bytes; --max-request-mb)")
    return b"".join(chunks)


@functools.cache
def page() -> bytes:
    """The page at `/`: choose or drop a picture, see its classes and the version that answered."""
    return resources.files("tuning.champion").joinpath(PAGE_FILE).read_bytes()


def _replay(body: bytes) -> Receive:
    """A `receive` that gives the body already read, for MLflow's app."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _answer_lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    library_output.quiet_environment()
    parser = OneLineErrorParser(prog="python -m tuning.champion.model_server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-uri", default=f"models:/{DEFAULT_MODEL_NAME}@{CHAMPION_ALIAS}",
                        help="models:/<name>@<alias> to follow the alias, or models:/<name>/<version> (default: %(default)s)")
    parser.add_argument("--tracking-uri", help=TRACKING_URI_HELP)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=5001, help="port (default: %(default)s)")
    parser.add_argument("--poll-s", type=float, default=POLL_S, help="seconds between registry checks (default: %(default)s)")
    parser.add_argument("--max-request-mb", type=float, default=MAX_REQUEST_BYTES / 2**20,
                        help="the largest request body taken, in MiB; larger ones get 413 (default: %(default)g)")
    options = parser.parse_args(argv)
    if not options.poll_s > 0:
        parser.error(f"--poll-s must be above 0, got {options.poll_s:g}")
    if not options.max_request_mb > 0:
        parser.error(f"--max-request-mb must be above 0, got {options.max_request_mb:g}")
    if (unusable := listen_address_error(options.host, options.port)) is not None:
        parser.error(unusable)
    try:
        server = ChampionServer(ModelReference.parse(options.model_uri), options.poll_s, int(options.max_request_mb * 2**20))
    except ModelUriError as error:
        parser.error(str(error))
    mlflow.set_tracking_uri(resolve_tracking_uri(options.tracking_uri))
    started = time.monotonic()
    server.start_following()
    print(f"model server on http://{options.host}:{options.port}/invocations "
          f"(ready in {time.monotonic() - started:.1f} s)", flush=True)
    uvicorn.run(server, host=options.host, port=options.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
