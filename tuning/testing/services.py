"""Real services for a test or a benchmark: databases on the local PostgreSQL, a PostgreSQL of one's own, an MLflow
server on a free port."""

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

POSTGRES = {
    "host": os.environ.get("FMNIST_TEST_PGHOST", "127.0.0.1"),
    "port": int(os.environ.get("FMNIST_TEST_PGPORT", "5432")),
    "user": os.environ.get("FMNIST_TEST_PGUSER", "postgres"),
}
"""The local PostgreSQL (trust auth) that tests and benchmarks create their databases on."""


def postgres_url(database: str) -> str:
    """The SQLAlchemy URL of `database` on the local PostgreSQL, as MLflow and Optuna take it."""
    return f"postgresql+psycopg2://{POSTGRES['user']}@{POSTGRES['host']}:{POSTGRES['port']}/{database}"


def free_port() -> int:
    """A TCP port nothing listens on now."""
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
    try:
        yield name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@dataclass(frozen=True)
class MlflowServer:
    """A running `mlflow server` and the PostgreSQL database behind it."""

    uri: str
    database: str

    def connect(self):  # psycopg2 has no types
        """A psycopg2 connection to the server's backend database."""
        return psycopg2.connect(dbname=self.database, **POSTGRES)


@contextlib.contextmanager
def mlflow_server_on(database: str, folder: Path, workers: int = 1) -> Iterator[MlflowServer]:
    """`mlflow server` with `database` as its backend store and artifacts proxied into `folder`, on a free port."""
    arguments = ["--backend-store-uri", postgres_url(database), "--serve-artifacts",
                 "--artifacts-destination", str(folder / "mlflow-artifacts")]
    with running_mlflow_server(arguments, folder / "mlflow-server.log", workers) as uri:
        yield MlflowServer(uri, database)


@contextlib.contextmanager
def running_mlflow_server(arguments: list[str], log_path: Path, workers: int = 1, **environment: str) -> Iterator[str]:
    """`mlflow server ARGUMENTS` on a free local port, healthy, run in the log's folder (relative paths land
    there); yields its URI and stops it afterwards."""
    port = free_port()
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", *arguments, "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(workers)],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **environment}, cwd=log_path.parent,
        )
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(uri + "/health", server, log_path)
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


@dataclass(frozen=True)
class PrivatePostgres:
    """A PostgreSQL server the caller may stop and start (the machine's shared one must stay up)."""

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


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of one's own (initdb in a new folder under /tmp, a free port, trust auth), stopped and
    deleted afterwards. As root, its programs run as the `postgres` user, as initdb demands."""
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
