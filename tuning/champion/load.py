"""`python -m tuning.champion.load`: put a bounded load on a model server and print what it answered.

Clients in threads, each on its own kept-alive connection, send requests for a fixed time (and at most a fixed
count): requests/s, images/s, latency p50/p99, errors, and the model versions that answered. `--body` chooses what they
send: MLflow's JSON of raw pixels, a PNG of each image (one a request), a .npy batch, or the three in turn (`mixed`).

Example:
    python -m tuning.champion.load --url http://127.0.0.1:5001 --images 1 --clients 8 --seconds 30
    python -m tuning.champion.load --body mixed --images 16 --clients 16 --seconds 60
"""

from __future__ import annotations

import collections
import http.client
import io
import json
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

import numpy as np

from fmnist.command_line import OneLineErrorParser
from fmnist.images import png
from fmnist.locations import DATA_DIR_HELP
from tuning.runtime.error_text import first_line

MAX_REQUESTS_PER_CLIENT = 100_000
TIMEOUT_S = 30.0


@dataclass
class LoadResult:
    """What the server answered under one load."""

    clients: int
    images_per_request: int
    seconds: float
    latencies_s: list[float] = field(default_factory=list)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    versions: list[str] = field(default_factory=list)
    """The model version of each answer, in the order they came."""

    @property
    def requests(self) -> int:
        return len(self.latencies_s)

    def percentile_ms(self, percent: float) -> float:
        return float(np.percentile(self.latencies_s, percent) * 1000) if self.latencies_s else float("nan")

    def line(self) -> str:
        """One line of figures."""
        per_s = self.requests / self.seconds if self.seconds else 0.0
        return (f"{self.images_per_request:>4} images x {self.clients:>2} clients: {per_s:8.1f} requests/s "
                f"{per_s * self.images_per_request:9.1f} images/s  p50 {self.percentile_ms(50):7.1f} ms  "
                f"p99 {self.percentile_ms(99):7.1f} ms  errors {sum(self.errors.values())}")


BODIES = ("json", "png", "npy", "mixed")


@dataclass(frozen=True)
class Request:
    """One request's body, its content type and how many images it holds."""

    body: bytes
    content_type: str
    images: int


def requests_of(images: np.ndarray, body: str) -> list[Request]:
    """What the clients send in turn: MLflow's `{"inputs": [...]}` of raw pixels (`json`), a PNG of the first image
    (`png`), a .npy batch (`npy`), or one of each (`mixed`)."""
    if body == "mixed":
        return [request for kind in ("json", "png", "npy") for request in requests_of(images, kind)]
    if body == "png":
        return [Request(png(images[0]), "image/png", 1)]
    if body == "npy":
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(images, dtype=np.uint8))
        return [Request(buffer.getvalue(), "application/x-npy", len(images))]
    return [Request(json.dumps({"inputs": images.astype(int).tolist()}).encode(), "application/json", len(images))]


def run_load(url: str, images: np.ndarray, clients: int, seconds: float,
             max_requests_per_client: int = MAX_REQUESTS_PER_CLIENT, body: str = "json") -> LoadResult:
    """`clients` threads posting `images` (as `body` says: `requests_of`) to `url`/invocations until `seconds` pass (or
    each sent its maximum)."""
    target = urllib.parse.urlsplit(url)
    requests = requests_of(images, body)
    result = LoadResult(clients, round(sum(request.images for request in requests) / len(requests)), seconds)
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=TIMEOUT_S)
        for count in range(max_requests_per_client):
            if time.monotonic() >= deadline:
                break
            request = requests[count % len(requests)]
            started = time.perf_counter()
            try:
                connection.request("POST", "/invocations", request.body, {"Content-Type": request.content_type})
                response = connection.getresponse()
                response.read()
                outcome = "ok" if response.status == 200 else f"HTTP {response.status}"
                version = response.getheader("X-Model-Version", "?")
            except (OSError, http.client.HTTPException) as error:
                outcome, version = type(error).__name__, "?"
                connection.close()
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=TIMEOUT_S)
            elapsed = time.perf_counter() - started
            with lock:
                result.latencies_s.append(elapsed)
                result.versions.append(version)
                if outcome != "ok":
                    result.errors[outcome] += 1
        connection.close()

    threads = [threading.Thread(target=client, name=f"load-client-{number}") for number in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.monotonic() - started
    return result


def main(argv: list[str] | None = None) -> int:
    from fmnist.data import load
    from fmnist.errors import DatasetError

    parser = OneLineErrorParser(prog="python -m tuning.champion.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:5001", help="the model server (default: %(default)s)")
    parser.add_argument("--images", type=int, default=1, help="test images per request (default: %(default)s)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long (default: %(default)s)")
    parser.add_argument("--body", choices=BODIES, default="json",
                        help="what each request holds: MLflow's JSON, a PNG, a .npy batch, or each in turn (default: %(default)s)")
    parser.add_argument("--data-dir", help=DATA_DIR_HELP)
    options = parser.parse_args(argv)
    for name, lowest in (("images", 1), ("clients", 1)):
        if getattr(options, name) < lowest:
            parser.error(f"--{name} must be at least {lowest}, got {getattr(options, name)}")
    if not 0 < options.seconds <= 3600:
        parser.error(f"--seconds must be above 0 and at most 3600, got {options.seconds:g}")
    target = urllib.parse.urlsplit(options.url)
    if target.scheme != "http" or not target.hostname:
        parser.error(f"--url {options.url}: expected http://host:port")
    try:
        images = load(options.data_dir).test.images[: options.images]
        urllib.request.urlopen(f"{options.url}/ping", timeout=TIMEOUT_S).close()
    except DatasetError as error:
        parser.error(str(error))
    except (OSError, http.client.HTTPException) as error:
        parser.error(f"--url {options.url}: the model server does not answer /ping ({first_line(error)})")
    result = run_load(options.url, images, options.clients, options.seconds, body=options.body)
    print(result.line())
    print(f"versions answering: {', '.join(f'{version} ({count})' for version, count in collections.Counter(result.versions).items())}")
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
