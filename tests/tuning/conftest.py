"""Real services for the search tests: a fresh PostgreSQL database and an MLflow server on it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPOSITORY
from tuning.testing.services import MlflowServer, fresh_database, mlflow_server_on, postgres_url


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """MLflow's backend database for this test session."""
    with fresh_database("fmnist_test") as name:
        yield name


@pytest.fixture(scope="session")
def study_storage_url() -> Iterator[str]:
    """An Optuna study database on the local PostgreSQL (a database of its own, as on the platform)."""
    with fresh_database("fmnist_test_optuna") as name:
        yield postgres_url(name)


@pytest.fixture(scope="session")
def mlflow_server(postgres_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """`mlflow server` with a PostgreSQL backend store and proxied artifacts, on a free local port."""
    with mlflow_server_on(postgres_database, tmp_path_factory.mktemp("mlflow")) as server:
        yield server


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
