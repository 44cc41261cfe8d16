"""Loading, caching and splitting real Fashion-MNIST in both layouts."""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fmnist import data
from fmnist.download import OFFICIAL_MD5, download_official
from fmnist.errors import DatasetError
from tests.conftest import write_csv_slice, write_idx_slice


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_csv_layout_loads_real_records(tmp_path: Path, csv_lines, dataset, compress: bool) -> None:
    write_csv_slice(tmp_path, csv_lines, compress=compress)
    loaded = data.load(tmp_path, download=False)
    assert loaded.train.images.shape == (300, 28, 28) and loaded.train.images.dtype == np.uint8
    assert loaded.test.labels.shape == (300,)
    np.testing.assert_array_equal(loaded.train.images, dataset.train.images[:300])
    np.testing.assert_array_equal(loaded.test.labels, dataset.test.labels[:300])


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_idx_layout_matches_csv_layout(tmp_path: Path, csv_lines, dataset, compress: bool) -> None:
    write_csv_slice(tmp_path / "csv", csv_lines)
    write_idx_slice(tmp_path / "idx", dataset, compress=compress)
    from_csv = data.load(tmp_path / "csv", download=False)
    from_idx = data.load(tmp_path / "idx", download=False)
    np.testing.assert_array_equal(from_idx.train.images, from_csv.train.images)
    np.testing.assert_array_equal(from_idx.test.labels, from_csv.test.labels)
    assert from_idx.digest == from_csv.digest


def test_full_real_dataset_has_both_splits(dataset) -> None:
    assert (len(dataset.train), len(dataset.test)) == (60_000, 10_000)
    assert np.bincount(dataset.train.labels).tolist() == [6_000] * 10
    assert len(dataset.digest) == 64


def test_cache_is_written_once_and_reused(tmp_path: Path, csv_lines) -> None:
    write_csv_slice(tmp_path, csv_lines)
    first = data.load(tmp_path, download=False)
    cache_files = list((tmp_path / ".cache").glob("*.npz"))
    assert len(cache_files) == 1
    written_at = cache_files[0].stat().st_mtime_ns
    second = data.load(tmp_path, download=False)
    assert cache_files[0].stat().st_mtime_ns == written_at
    np.testing.assert_array_equal(second.train.images, first.train.images)
    assert second.digest == first.digest


def test_changed_source_gets_a_new_cache_entry(tmp_path: Path, csv_lines) -> None:
    write_csv_slice(tmp_path, csv_lines)
    before = data.load(tmp_path, download=False)
    shorter = {split: rows[:101] for split, rows in csv_lines.items()}
    write_csv_slice(tmp_path, shorter)
    after = data.load(tmp_path, download=False)
    assert len(after.train) == 100 and after.digest != before.digest
    assert len(list((tmp_path / ".cache").glob("*.npz"))) == 2


def test_environment_variable_points_at_the_data(tmp_path: Path, csv_lines, monkeypatch) -> None:
    write_csv_slice(tmp_path / "elsewhere", csv_lines)
    monkeypatch.setenv("FMNIST_DATA_DIR", str(tmp_path / "elsewhere"))
    assert len(data.load(download=False).train) == 300


def test_stratified_split_keeps_class_balance_and_is_repeatable(dataset) -> None:
    train, validation = data.stratified_split(dataset.train, validation_fraction=0.1, seed=7)
    assert (len(train), len(validation)) == (54_000, 6_000)
    assert np.bincount(validation.labels, minlength=10).tolist() == [600] * 10
    _, again_validation = data.stratified_split(dataset.train, validation_fraction=0.1, seed=7)
    np.testing.assert_array_equal(again_validation.images, validation.images)
    _, other_validation = data.stratified_split(dataset.train, validation_fraction=0.1, seed=8)
    assert not np.array_equal(other_validation.images, validation.images)


def test_split_train_and_validation_are_disjoint(dataset) -> None:
    subset = data.stratified_subset(dataset.train, 2_000, seed=0)
    train, validation = data.stratified_split(subset, validation_fraction=0.25)
    train_rows = {image.tobytes() for image in train.images}
    assert not any(image.tobytes() in train_rows for image in validation.images)
    assert np.bincount(subset.labels).tolist() == [200] * 10


def test_every_search_holds_out_the_same_validation_images_whatever_its_seed_and_train_size(dataset) -> None:
    """So that scores of different searches compare, and no search trains on another's validation images."""
    full_train, validation = data.held_out_split(dataset.train, 0.1)
    small_train, same_validation = data.held_out_split(dataset.train, 0.1, train_size=2_000, seed=3)
    other_train, again_validation = data.held_out_split(dataset.train, 0.1, train_size=2_000, seed=4)
    assert validation.digest() == same_validation.digest() == again_validation.digest()
    assert (len(full_train), len(small_train), len(validation)) == (54_000, 2_000, 6_000)
    assert small_train.digest() != other_train.digest(), "the seed draws the training images"
    held_out = {image.tobytes() for image in validation.images}
    assert not any(image.tobytes() in held_out for image in small_train.images)
    assert data.held_out_split(dataset.train, 0.2)[1].digest() != validation.digest()


def test_bad_validation_fraction_is_refused(dataset) -> None:
    with pytest.raises(ValueError, match="validation_fraction"):
        data.stratified_split(dataset.train, validation_fraction=1.5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *arguments) -> None:
        pass


@pytest.fixture
def local_mirror(tmp_path: Path, shared_data_dir: Path, dataset) -> Iterator[tuple[str, Path]]:
    """An HTTP server on 127.0.0.1 serving copies of the real IDX files (written from the records when the test data
    holds only the CSVs)."""
    served = tmp_path / "mirror"
    served.mkdir()
    if all((shared_data_dir / name).exists() for name in OFFICIAL_MD5):
        for name in OFFICIAL_MD5:
            shutil.copy(shared_data_dir / name, served / name)
    else:
        write_idx_slice(served, dataset, size=len(dataset.train), compress=True)
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", served
    server.shutdown()


def test_download_fetches_and_verifies_files(tmp_path: Path, local_mirror) -> None:
    mirror, served = local_mirror
    served_md5 = {name: hashlib.md5((served / name).read_bytes()).hexdigest() for name in OFFICIAL_MD5}
    paths = download_official(tmp_path / "data", mirror, checksums=served_md5)
    assert [path.name for path in paths] == list(OFFICIAL_MD5)
    loaded = data.load(tmp_path / "data", download=False)
    assert (len(loaded.train), len(loaded.test)) == (60_000, 10_000)


def test_download_with_wrong_checksum_leaves_nothing(tmp_path: Path, local_mirror, monkeypatch) -> None:
    """The shared copies are re-compressed, so their bytes differ from the published sums."""
    mirror, _ = local_mirror
    monkeypatch.setenv("FMNIST_MIRROR", mirror)
    with pytest.raises(DatasetError, match="MD5 .* does not match the published 8d4fb7e6c68d591d4c3dfef9ec88bf0d"):
        data.load(tmp_path / "data")
    assert list((tmp_path / "data").iterdir()) == []


def test_offline_says_where_to_put_the_files(tmp_path: Path, monkeypatch) -> None:
    closed_port = _unused_port()
    monkeypatch.setenv("FMNIST_MIRROR", f"http://127.0.0.1:{closed_port}/")
    with pytest.raises(DatasetError) as raised:
        data.load(tmp_path / "data")
    message = str(raised.value)
    assert str(tmp_path / "data") in message and "fashion-mnist_train.csv" in message and "\n" not in message
    assert list((tmp_path / "data").iterdir()) == []


def _unused_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
