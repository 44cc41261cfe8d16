"""The model server against in-process inference on the same images, in one run.

Registers the original CNN in a fresh MLflow store (SQLite, in a temporary folder) as the search registers its
champion, starts `python -m tuning.champion.model_server` on a loopback port, and measures:
- in process: the pyfunc's `predict` on 1, 32 and 256 real test images, repeated for `--seconds`;
- over HTTP: one PNG a request; 1, 32 and 256 images a request as MLflow's JSON and as a .npy batch; from 1 and 8
  concurrent clients, each for `--seconds` (`tuning.champion.load`: bounded in time and count);
- the server's resident memory after its start and at the end.
Writes docs/results/serving.json. Exit code 0 when the targets hold: one PNG (and one JSON image) a request p50 <= 10 ms
and p99 <= 50 ms (one client); 256 images a request, as JSON and as .npy, >= 70% of in-process images/s (one client).
Run it on an otherwise idle host.

    python bench/serving.py --seconds 10
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import results
from mlflow.tracking import MlflowClient

from fmnist.config import ModelConfig
from fmnist.data import load
from fmnist.model import build
from tuning.champion.load import LoadResult, run_load
from tuning.champion.registry import ValidationScore, register

MODEL = "fmnist-cnn-bench"
IMAGES_PER_REQUEST = (1, 32, 256)
CLIENTS = (1, 8)
LOADS = [("png", 1), *((body, count) for body in ("json", "npy") for count in IMAGES_PER_REQUEST)]
ONE_IMAGE_P50_MS, ONE_IMAGE_P99_MS, BATCH_SHARE = 10.0, 50.0, 0.70


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def in_process_images_per_s(model: mlflow.pyfunc.PyFuncModel, images: np.ndarray, seconds: float) -> tuple[float, float]:
    """Images/s and the median call in ms of the pyfunc's `predict`, repeated for `seconds`."""
    model.predict(images)
    calls, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        model.predict(images)
        calls.append(time.perf_counter() - started)
    return len(calls) * len(images) / sum(calls), float(np.median(calls) * 1000)


def start_server(tracking_uri: str, port: int, folder: Path) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "tuning.champion.model_server", "--port", str(port), "--model-uri", f"models:/{MODEL}@champion"],
        env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}, cwd=folder,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2).close()
            return server
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("error: the model server did not start") from None
            time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="each measurement's length (default: 10)")
    parser.add_argument("--port", type=int, default=5071, help="the server's loopback port (default: 5071)")
    options = parser.parse_args()
    dataset = load(os.environ.get("FMNIST_DATA_DIR"))
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        tracking_uri = f"sqlite:///{folder / 'mlflow.db'}"
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        client = MlflowClient()
        experiment_id = client.create_experiment("serving-bench", artifact_location=(folder / "artifacts").as_uri())
        run_id = client.create_run(experiment_id).info.run_id
        register(run_id, build(ModelConfig()), dataset.test, 0.1, ValidationScore("val_accuracy", 0.1, 0.0, "untrained"), MODEL)
        model = mlflow.pyfunc.load_model(f"models:/{MODEL}/1")
        print(f"{os.cpu_count()} CPUs; the original CNN; {options.seconds:g} s a measurement")
        in_process = {}
        for count in IMAGES_PER_REQUEST:
            images_per_s, median_ms = in_process_images_per_s(model, dataset.test.images[:count].astype(np.float32), options.seconds)
            in_process[count] = images_per_s
            print(f"in process  {count:>4} images: {images_per_s:9.1f} images/s, median call {median_ms:6.2f} ms")
        server = start_server(tracking_uri, options.port, folder)
        try:
            memory_start = resident_mb(server.pid)
            served = {}
            for body, count in LOADS:
                for clients in CLIENTS:
                    result = run_load(f"http://127.0.0.1:{options.port}", dataset.test.images[:count], clients, options.seconds,
                                      body=body)
                    served[body, count, clients] = result
                    print(f"over HTTP  {body:>4} {result.line()}")
            memory_end = resident_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"server memory: {memory_start:.0f} MB after start, {memory_end:.0f} MB at the end")
    checks = []
    for body in ("png", "json"):
        single = served[body, 1, 1]
        checks += [(f"one {body} image p50 {single.percentile_ms(50):.1f} ms <= {ONE_IMAGE_P50_MS:g}",
                    single.percentile_ms(50) <= ONE_IMAGE_P50_MS),
                   (f"one {body} image p99 {single.percentile_ms(99):.1f} ms <= {ONE_IMAGE_P99_MS:g}",
                    single.percentile_ms(99) <= ONE_IMAGE_P99_MS)]
    shares = {body: served_images_per_s(served[body, 256, 1]) / in_process[256] for body in ("json", "npy")}
    checks += [(f"256 images as {body}: {share:.0%} of in-process images/s >= {BATCH_SHARE:.0%}", share >= BATCH_SHARE)
               for body, share in shares.items()]
    errors = sum(sum(result.errors.values()) for result in served.values())
    checks.append((f"errors {errors} == 0", errors == 0))
    for text, held in checks:
        print(f"{'met' if held else 'MISSED'}: {text}")
    figures = {
        "in_process_images_per_s": {str(count): round(value, 1) for count, value in in_process.items()},
        "served": [{"body": body, "images_per_request": count, "clients": clients,
                    "images_per_s": round(served_images_per_s(result), 1), "p50_ms": round(result.percentile_ms(50), 2),
                    "p99_ms": round(result.percentile_ms(99), 2), "errors": sum(result.errors.values())}
                   for (body, count, clients), result in served.items()],
        "share_of_in_process_256": {body: round(share, 3) for body, share in shares.items()},
        "server_memory_mb": {"after_start": round(memory_start), "at_end": round(memory_end)},
    }
    print(f"results: {results.write('serving', figures, checks)}")
    return 0 if all(held for _, held in checks) else 1


def served_images_per_s(result: LoadResult) -> float:
    return result.requests * result.images_per_request / result.seconds


if __name__ == "__main__":
    sys.exit(main())
