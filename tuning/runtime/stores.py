"""Where the search's stores are: the MLflow tracking URI, the Optuna study database, Tune's storage and the registered
model's name, as every command resolves them from its flags and the environment."""

from __future__ import annotations

import os
from pathlib import Path

SQLITE_PREFIX = "sqlite:///"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_STUDY_STORAGE = "sqlite:///optuna.db"
STUDY_STORAGE_ENV = "OPTUNA_STORAGE"
DEFAULT_MODEL_NAME = "fmnist-cnn"
"""The registered model every search's champion is a version of, unless --model-name says otherwise."""


def resolve_tracking_uri(given: str | None) -> str:
    """`--tracking-uri`, else `MLFLOW_TRACKING_URI`, else a local SQLite file; a local file or folder made absolute."""
    uri = given or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    if not is_uri(uri) and not uri.startswith("file:"):
        return str(Path(uri).resolve())
    return absolute_sqlite(uri)


def resolve_study_storage(given: str | None) -> str:
    """`--study-storage`, else `OPTUNA_STORAGE`, else a SQLite file beside `mlflow.db`; a local file made absolute."""
    return absolute_sqlite(given or os.environ.get(STUDY_STORAGE_ENV) or DEFAULT_STUDY_STORAGE)


def absolute_sqlite(url: str) -> str:
    """`url` with a relative SQLite file made absolute: the same database from every process and for `--resume` from
    any folder (the workers of a Ray started with `ray start --head` run in the folder it was started from)."""
    if url.startswith(SQLITE_PREFIX) and not url.startswith(SQLITE_PREFIX + "/"):
        return SQLITE_PREFIX + str(Path(url.removeprefix(SQLITE_PREFIX)).resolve())
    return url


def is_uri(location: str) -> bool:
    """Whether a storage location is a URI (`s3://…`, `file:///…`) rather than a local path."""
    return "://" in location


def as_uri(path: str) -> str:
    """A storage path as pyarrow takes it: a URI as given, a local path as `file://`."""
    return path if is_uri(path) else f"file://{path}"
