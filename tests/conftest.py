"""Shared fixtures: the real Fashion-MNIST files and slices of them."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from fmnist import data

REPOSITORY = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FMNIST_TEST_DATA", REPOSITORY.parent / "shared" / "data" / "fashion-mnist"))


SERVICE_FIXTURES = frozenset({"postgres_database", "study_storage_url", "mlflow_server", "private_postgres"})
"""Fixtures that start PostgreSQL databases or servers: a test that uses one is slow, whatever its own marks."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs a service `slow`, so `make test-fast` needs none."""
    for item in items:
        if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The real dataset in both layouts (read-only)."""
    if not (SHARED_DATA / "fashion-mnist_train.csv.gz").exists():
        raise RuntimeError(f"{SHARED_DATA}: real Fashion-MNIST not found; set FMNIST_TEST_DATA")
    return SHARED_DATA


@pytest.fixture(scope="session")
def dataset(shared_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> data.FashionMNIST:
    """The full real dataset, parsed once per test session."""
    return data.load(shared_data_dir, cache_dir=tmp_path_factory.mktemp("cache"), download=False)


@pytest.fixture(scope="session")
def csv_lines(shared_data_dir: Path) -> dict[str, list[bytes]]:
    """Header plus the first 300 records of each real Kaggle CSV."""
    lines = {}
    for split in ("train", "test"):
        with gzip.open(shared_data_dir / f"fashion-mnist_{split}.csv.gz", "rb") as handle:
            lines[split] = [next(handle).rstrip(b"\n") for _ in range(301)]
    return lines


def write_csv_slice(directory: Path, lines: dict[str, list[bytes]], compress: bool = False) -> None:
    """Write the real CSV slices into `directory` in Kaggle's layout."""
    directory.mkdir(parents=True, exist_ok=True)
    for split, rows in lines.items():
        content = b"\n".join(rows) + b"\n"
        name = f"fashion-mnist_{split}.csv"
        if compress:
            (directory / (name + ".gz")).write_bytes(gzip.compress(content))
        else:
            (directory / name).write_bytes(content)


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array in the IDX format (magic 0x0000080N, big-endian dimensions)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx_slice(directory: Path, dataset: data.FashionMNIST, size: int = 300, compress: bool = False) -> None:
    """Write the first `size` real records of each split in Zalando's IDX layout."""
    directory.mkdir(parents=True, exist_ok=True)
    parts = {
        "train-images-idx3-ubyte": dataset.train.images[:size], "train-labels-idx1-ubyte": dataset.train.labels[:size],
        "t10k-images-idx3-ubyte": dataset.test.images[:size], "t10k-labels-idx1-ubyte": dataset.test.labels[:size],
    }
    for name, array in parts.items():
        content = idx_bytes(array)
        if compress:
            (directory / (name + ".gz")).write_bytes(gzip.compress(content))
        else:
            (directory / name).write_bytes(content)
