"""Real services for the search tests: a fresh PostgreSQL database and an MLflow server on it."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest

from tests.conftest import REPOSITORY

POSTGRES = {
    "host": os.environ.get("FMNIST_TEST_PGHOST", "127.0.0.1"),
    "port": int(os.environ.get("FMNIST_TEST_PGPORT", "5432")),
    "user": os.environ.get("FMNIST_TEST_PGUSER", "postgres"),
}


@dataclass(frozen=True)
class MlflowServer:
    """A running `mlflow server` and the PostgreSQL database behind it."""

    uri: str
    database: str

    def connect(self):
        """A psycopg2 connection to the server's backend database."""
        return psycopg2.connect(dbname=self.database, **POSTGRES)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """A database created on the local PostgreSQL, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(dbname="postgres", **POSTGRES)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    yield name
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """MLflow's backend database for this test session."""
    with fresh_database("fmnist_test") as name:
        yield name


@pytest.fixture(scope="session")
def study_storage_url() -> Iterator[str]:
    """An Optuna study database on the local PostgreSQL (a database of its own, as on the platform)."""
    with fresh_database("fmnist_test_optuna") as name:
        yield f"postgresql+psycopg2://{POSTGRES['user']}@{POSTGRES['host']}:{POSTGRES['port']}/{name}"


@pytest.fixture(scope="session")
def mlflow_server(postgres_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """`mlflow server` with a PostgreSQL backend store and proxied artifacts, on a free local port."""
    artifacts = tmp_path_factory.mktemp("mlflow-artifacts")
    backend = f"postgresql+psycopg2://{POSTGRES['user']}@{POSTGRES['host']}:{POSTGRES['port']}/{postgres_database}"
    with running_mlflow_server(["--backend-store-uri", backend, "--serve-artifacts", "--artifacts-destination", str(artifacts)],
                               artifacts.parent / "mlflow-server.log") as uri:
        yield MlflowServer(uri, postgres_database)


@contextlib.contextmanager
def running_mlflow_server(arguments: list[str], log_path: Path, **environment: str) -> Iterator[str]:
    """`mlflow server ARGUMENTS` on a free local port, healthy, run in the log's folder (relative paths land
    there); yields its URI and stops it afterwards."""
    port = free_port()
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", *arguments, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **environment}, cwd=log_path.parent,
        )
        uri = f"http://127.0.0.1:{port}"
        wait_for_http(uri + "/health", server, log_path)
        try:
            yield uri
        finally:
            server.terminate()
            server.wait(timeout=30)


def wait_for_http(url: str, server: subprocess.Popen, log_path: Path, timeout_s: float = 180) -> None:
    """Return once `url` answers; kill `server` and raise when it exits or `timeout_s` passes first."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError(f"{url} did not answer; see {log_path}") from None
            time.sleep(1)


def search_environment(**extra: str) -> dict[str, str]:
    """The environment for a `python -m tuning.search` subprocess: no inherited Ray, MLflow or Optuna settings."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("RAY_", "MLFLOW_", "OPTUNA_"))}
    environment["PYTHONPATH"] = str(REPOSITORY)
    environment.update(extra)
    return environment


def run_module(module: str, arguments: list[str], cwd: Path, timeout: float = 900, **environment: str) -> subprocess.CompletedProcess:
    """Run `python -m module arguments` to the end and return its outcome (output kept for messages)."""
    return subprocess.run(
        [sys.executable, "-m", module, *arguments], cwd=cwd, env=search_environment(**environment),
        capture_output=True, text=True, timeout=timeout, check=False,
    )


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of the test's own (initdb in a new folder under /tmp, a free port, trust auth),
    stopped and deleted afterwards. As root, its programs run as the `postgres` user, as initdb demands."""
    binaries = max(Path("/usr/lib/postgresql").glob("*/bin"))
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    directory = Path(tempfile.mkdtemp(prefix="fmnist-test-postgres-"))
    if as_postgres:
        shutil.chown(directory, "postgres")
    server = PrivatePostgres([*as_postgres, str(binaries / "pg_ctl")], directory / "data", free_port())
    try:
        subprocess.run([*as_postgres, str(binaries / "initdb"), "-D", str(server.data), "-A", "trust", "-U", "postgres"],
                       check=True, capture_output=True)
        server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@dataclass(frozen=True)
class PrivatePostgres:
    """A PostgreSQL server the test may stop and start (the machine's shared one must stay up)."""

    pg_ctl: list[str]
    data: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"
        subprocess.run([*self.pg_ctl, "start", "-w", "-D", str(self.data), "-o", options, "-l", str(self.data / "log")],
                       check=True, capture_output=True)

    def stop(self) -> None:
        subprocess.run([*self.pg_ctl, "stop", "-w", "-m", "fast", "-D", str(self.data)], check=True, capture_output=True)
