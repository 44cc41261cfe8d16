"""The little a search keeps beside Tune's own state: its MLflow parent run, so `--resume` logs there."""

from __future__ import annotations

import json
from typing import Any

import pyarrow.fs

STATE_FILE = "fmnist_search.json"


class SearchStateError(RuntimeError):
    """No resumable search at that place."""


def write(experiment_path: str, state: dict[str, Any]) -> None:
    """Store `state` in the experiment directory (a local path or a storage URI)."""
    filesystem, path = pyarrow.fs.FileSystem.from_uri(_as_uri(experiment_path))
    filesystem.create_dir(path, recursive=True)
    with filesystem.open_output_stream(f"{path}/{STATE_FILE}") as stream:
        stream.write(json.dumps(state).encode())


def read(experiment_path: str) -> dict[str, Any]:
    """The state of an earlier search, or SearchStateError naming where it looked."""
    filesystem, path = pyarrow.fs.FileSystem.from_uri(_as_uri(experiment_path))
    try:
        with filesystem.open_input_stream(f"{path}/{STATE_FILE}") as stream:
            return json.loads(stream.read())
    except FileNotFoundError:
        raise SearchStateError(
            f"--resume: {experiment_path}/{STATE_FILE} not found; --name must be an interrupted search under --storage-path"
        ) from None


def _as_uri(path: str) -> str:
    return path if "://" in path else f"file://{path}"
