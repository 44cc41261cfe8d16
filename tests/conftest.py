"""Shared fixtures: the real Fashion-MNIST files and slices of them.

The tests read the dataset where the README tells users to put it, `data/` in the clone (either public layout, plain
or gzipped), or where `FMNIST_TEST_DATA` points.
"""

from __future__ import annotations

import gzip
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fmnist import data

REPOSITORY = Path(__file__).resolve().parents[1]
TEST_DATA_ENV = "FMNIST_TEST_DATA"


SERVICE_FIXTURES = frozenset({"postgres_database", "study_storage_url", "mlflow_server", "private_postgres"})
"""Fixtures that start PostgreSQL databases or servers: a test that uses one is slow, whatever its own marks."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs a service `slow`, so `make test-fast` needs none."""
    for item in items:
        if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def test_data_dir() -> Path:
    """`$FMNIST_TEST_DATA`, else the clone's `data/`: a folder holding one complete layout of the real dataset."""
    folder = Path(os.environ.get(TEST_DATA_ENV) or REPOSITORY / "data")
    if not data.find_sources(folder):
        raise RuntimeError(f"{folder}: no Fashion-MNIST (Kaggle's CSVs or Zalando's IDX files); put it in data/ as the "
                           f"README says, or set {TEST_DATA_ENV}")
    return folder


@pytest.fixture(autouse=True)
def fast_tier_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test outside the slow tier that starts Ray or trains Keras fails, naming what it did: `make test-fast` starts
    no Ray and trains nothing."""
    if request.node.get_closest_marker("slow") is not None:
        return

    def refuse(what: str) -> Callable[..., None]:
        def refused(*_: object, **__: object) -> None:
            raise RuntimeError(f"a test outside the slow tier {what}: mark it @pytest.mark.slow")
        return refused

    import ray

    monkeypatch.setattr(ray, "init", refuse("started Ray"))
    if "keras" in sys.modules:  # imported by the test already: importing it here would cost every fast test seconds
        monkeypatch.setattr(sys.modules["keras"].Model, "fit", refuse("trained Keras"))


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The real dataset (read-only)."""
    return test_data_dir()


@pytest.fixture(scope="session")
def dataset(shared_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> data.FashionMNIST:
    """The full real dataset, parsed once per test session."""
    return data.load(shared_data_dir, cache_dir=tmp_path_factory.mktemp("cache"), download=False)


@pytest.fixture(scope="session")
def csv_lines(shared_data_dir: Path, dataset: data.FashionMNIST) -> dict[str, list[bytes]]:
    """Header plus the first 300 records of each real Kaggle CSV (written from the records when only IDX files are
    there)."""
    lines = {}
    for split in ("train", "test"):
        compressed, plain = (shared_data_dir / f"fashion-mnist_{split}.csv{suffix}" for suffix in (".gz", ""))
        if compressed.exists() or plain.exists():
            with gzip.open(compressed, "rb") if compressed.exists() else plain.open("rb") as handle:
                lines[split] = [next(handle).rstrip(b"\r\n") for _ in range(301)]
        else:
            records = getattr(dataset, split)
            header = b"label," + b",".join(b"pixel%d" % pixel for pixel in range(1, 785))
            lines[split] = [header] + [b",".join(b"%d" % value for value in (label, *image.ravel()))
                                       for label, image in zip(records.labels[:300], records.images[:300], strict=True)]
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
