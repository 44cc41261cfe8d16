"""Find, read, cache and split Fashion-MNIST.

Example:
    >>> dataset = load("data")                                  # doctest: +SKIP
    >>> train, validation = stratified_split(dataset.train, validation_fraction=0.1)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from fmnist import readers
from fmnist.download import MIRROR, download_official
from fmnist.errors import DatasetError
from fmnist.locations import resolve_data_dir

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
CSV_FILES = {"train": "fashion-mnist_train.csv", "test": "fashion-mnist_test.csv"}
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte",
}
CACHE_FORMAT_VERSION = "1"
VALIDATION_SEED = 0
"""The seed of the validation split: fixed, so every search holds out the same images."""


@dataclass(frozen=True)
class Split:
    """Images (N, 28, 28) uint8 and labels (N,) uint8."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, indices: np.ndarray) -> Split:
        """Return the records at `indices`."""
        return Split(self.images[indices], self.labels[indices])

    def digest(self) -> str:
        """A short hash of the images and labels: two splits with the same digest hold the same records."""
        content = hashlib.sha256(np.ascontiguousarray(self.images).tobytes())
        content.update(np.ascontiguousarray(self.labels).tobytes())
        return content.hexdigest()[:16]


@dataclass(frozen=True)
class FashionMNIST:
    """The training and test files, with a digest of their content for lineage."""

    train: Split
    test: Split
    digest: str
    sources: tuple[Path, ...]


def find_sources(data_dir: Path) -> dict[str, Path]:
    """Return the files of one complete layout (CSV preferred), or {} when neither layout is there."""
    for layout in (CSV_FILES, IDX_FILES):
        found = {role: _existing(data_dir / name) for role, name in layout.items()}
        present = {role: path for role, path in found.items() if path is not None}
        if len(present) == len(layout):
            return present
        if present:
            missing = [data_dir / layout[role] for role in layout if role not in present]
            raise DatasetError(f"{missing[0]}(.gz): file not found (its companion {next(iter(present.values())).name} is there)")
    return {}


def load(
    data_dir: str | Path | None = None,
    *,
    cache_dir: str | Path | None = None,
    download: bool = True,
) -> FashionMNIST:
    """Load the dataset, parsing once and reusing a `.npz` cache keyed by the source files' digest."""
    directory = resolve_data_dir(data_dir)
    sources = find_sources(directory)
    if not sources:
        if not download:
            raise DatasetError(f"{directory}: no Fashion-MNIST files (Kaggle CSVs or IDX files) found")
        download_official(directory, os.environ.get("FMNIST_MIRROR") or MIRROR)
        sources = find_sources(directory)
    cache_path = _cache_directory(directory, cache_dir) / f"fmnist-{_sources_digest(sources)[:20]}.npz"
    if cache_path.exists():
        return _read_cache(cache_path, tuple(sources.values()))
    dataset = _parse(sources)
    _write_cache(cache_path, dataset)
    return dataset


def stratified_split(split: Split, validation_fraction: float = 0.1, seed: int = 0) -> tuple[Split, Split]:
    """Split into (train, validation) with the class balance kept and a fixed seed."""
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be between 0 and 1, got {validation_fraction}")
    train_indices, validation_indices = train_test_split(
        np.arange(len(split)), test_size=validation_fraction, stratify=split.labels, random_state=seed
    )
    return split.take(np.sort(train_indices)), split.take(np.sort(validation_indices))


def held_out_split(training: Split, validation_fraction: float, train_size: int | None = None,
                   seed: int = 0) -> tuple[Split, Split]:
    """The training file as (train, validation). Validation is the same `validation_fraction` of the file whatever
    `seed` and `train_size` (split with `VALIDATION_SEED`), so that every search of a dataset scores on the same images
    and no model trains on them; `train_size` records of the rest, drawn with `seed`, train (all of them with None)."""
    train, validation = stratified_split(training, validation_fraction, seed=VALIDATION_SEED)
    return (stratified_subset(train, train_size, seed=seed) if train_size else train), validation


def stratified_subset(split: Split, size: int, seed: int = 0) -> Split:
    """A class-balanced subset of `size` records (all of them when `size` >= len(split))."""
    if size >= len(split):
        return split
    indices, _ = train_test_split(np.arange(len(split)), train_size=size, stratify=split.labels, random_state=seed)
    return split.take(np.sort(indices))


def _parse(sources: dict[str, Path]) -> FashionMNIST:
    if "train" in sources:
        train = Split(*readers.read_csv(sources["train"]))
        test = Split(*readers.read_csv(sources["test"]))
    else:
        train = _read_idx_pair(sources["train_images"], sources["train_labels"])
        test = _read_idx_pair(sources["test_images"], sources["test_labels"])
    return FashionMNIST(train, test, _content_digest(train, test), tuple(sources.values()))


def _read_idx_pair(images_path: Path, labels_path: Path) -> Split:
    images = readers.read_idx_images(images_path)
    labels = readers.read_idx_labels(labels_path)
    readers.check_same_length(images, labels, images_path, labels_path)
    return Split(images, labels)


def _content_digest(train: Split, test: Split) -> str:
    """Digest of the decoded arrays: the same for the CSV and IDX layouts of the same data."""
    digest = hashlib.sha256()
    for array in (train.images, train.labels, test.images, test.labels):
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


def _sources_digest(sources: dict[str, Path]) -> str:
    digest = hashlib.sha256(CACHE_FORMAT_VERSION.encode())
    for role in sorted(sources):
        digest.update(role.encode())
        with sources[role].open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def _cache_directory(data_dir: Path, cache_dir: str | Path | None) -> Path:
    """`cache_dir`, else `FMNIST_CACHE_DIR`, else `<data_dir>/.cache`, else the user's cache (read-only data)."""
    chosen = cache_dir or os.environ.get("FMNIST_CACHE_DIR")
    if chosen:
        return Path(chosen)
    beside_data = data_dir / ".cache"
    if os.access(data_dir, os.W_OK) or os.access(beside_data, os.W_OK):
        return beside_data
    return Path.home() / ".cache" / "fmnist-tune"


def _read_cache(path: Path, sources: tuple[Path, ...]) -> FashionMNIST:
    with np.load(path) as cached:
        train = Split(cached["train_images"], cached["train_labels"])
        test = Split(cached["test_images"], cached["test_labels"])
        return FashionMNIST(train, test, str(cached["digest"]), sources)


def _write_cache(path: Path, dataset: FashionMNIST) -> None:
    """Write atomically: a cache file exists complete or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary_name = tempfile.mkstemp(dir=path.parent, prefix=".fmnist-", suffix=".npz")
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(
                out,
                train_images=dataset.train.images, train_labels=dataset.train.labels,
                test_images=dataset.test.images, test_labels=dataset.test.labels,
                digest=np.array(dataset.digest),
            )
        os.chmod(temporary_name, 0o644)
        os.replace(temporary_name, path)
    finally:
        Path(temporary_name).unlink(missing_ok=True)


def _existing(base: Path) -> Path | None:
    for candidate in (base, base.with_name(base.name + ".gz")):
        if candidate.is_file():
            return candidate
    return None
