"""Where the dataset is: one answer for every command, and what their --data-dir flags say of it (no heavy imports,
so that a command's flags parse at once)."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "FMNIST_DATA_DIR"
DEFAULT_DATA_DIR = Path("data")
DATA_DIR_HELP = f"dataset directory (default: ${DATA_DIR_ENV} or ./{DEFAULT_DATA_DIR})"
"""What every command says of its --data-dir flag."""


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """The explicit directory, else `FMNIST_DATA_DIR`, else `./data`."""
    return Path(data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)
