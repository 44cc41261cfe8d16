"""Every malformed input gets one clear line naming the file (and line), a non-zero exit, no cache."""

from __future__ import annotations

import gzip
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from fmnist import data
from fmnist.errors import DatasetError
from tests.conftest import REPOSITORY, idx_bytes, write_csv_slice, write_idx_slice

Lines = dict[str, list[bytes]]


def _replace_cell(lines: Lines, record: int, column: int, value: bytes) -> Lines:
    """Copy of the slices with one cell of the training file changed (record 1 is file line 2)."""
    changed = dict(lines)
    train = list(lines["train"])
    cells = train[record].split(b",")
    cells[column] = value
    train[record] = b",".join(cells)
    changed["train"] = train
    return changed


CSV_CASES: dict[str, tuple[Callable[[Lines], Lines], str]] = {
    "empty file": (lambda lines: {**lines, "train": []}, r"fashion-mnist_train.csv: empty file"),
    "header only": (lambda lines: {**lines, "train": lines["train"][:1]}, r"no records after the header"),
    "wrong header": (
        lambda lines: {**lines, "train": [b"class," + lines["train"][0].split(b",", 1)[1]] + lines["train"][1:]},
        r"line 1: wrong header, expected 'label,pixel1,...,pixel784'",
    ),
    "too many columns": (
        lambda lines: {**lines, "train": lines["train"][:5] + [lines["train"][5] + b",0"] + lines["train"][6:]},
        r"line 6: expected 785 columns, found 786",
    ),
    "too few columns": (
        lambda lines: {**lines, "train": lines["train"][:9] + [lines["train"][9].rsplit(b",", 1)[0]] + lines["train"][10:]},
        r"line 10: expected 785 columns, found 784",
    ),
    "non-numeric cell": (lambda lines: _replace_cell(lines, 3, 100, b"abc"), r"line 4: column 'pixel100' is not a number: 'abc'"),
    "fractional cell": (lambda lines: _replace_cell(lines, 3, 7, b"1.5"), r"line 4: column 'pixel7' is not an integer: 1.5"),
    "pixel above 255": (lambda lines: _replace_cell(lines, 12, 400, b"256"), r"line 13: pixel400 = 256 is outside 0..255"),
    "negative pixel": (lambda lines: _replace_cell(lines, 2, 1, b"-1"), r"line 3: pixel1 = -1 is outside 0..255"),
    "label above 9": (lambda lines: _replace_cell(lines, 20, 0, b"10"), r"line 21: label 10 is outside 0..9"),
    "missing value": (lambda lines: _replace_cell(lines, 30, 50, b""), r"line 31: missing value in column 'pixel50'"),
    "blank line inside": (
        lambda lines: {**lines, "train": lines["train"][:40] + [b""] + lines["train"][40:]},
        r"line 41: expected 785 columns, found 1",
    ),
}


def _assert_refused(directory: Path, pattern: str) -> None:
    with pytest.raises(DatasetError, match=pattern) as raised:
        data.load(directory, download=False)
    message = str(raised.value)
    assert "\n" not in message and str(directory) in message
    assert not list(directory.rglob("*.npz")), "a cache file was left behind"


@pytest.mark.parametrize("case", list(CSV_CASES))
def test_malformed_csv_is_refused(tmp_path: Path, csv_lines: Lines, case: str) -> None:
    transform, pattern = CSV_CASES[case]
    write_csv_slice(tmp_path, transform(csv_lines))
    _assert_refused(tmp_path, pattern)


def test_truncated_gzip_is_refused(tmp_path: Path, csv_lines: Lines) -> None:
    write_csv_slice(tmp_path, csv_lines, compress=True)
    archive = tmp_path / "fashion-mnist_test.csv.gz"
    archive.write_bytes(archive.read_bytes()[:-2000])
    _assert_refused(tmp_path, r"fashion-mnist_test.csv.gz: truncated or corrupt gzip")


def test_missing_companion_file_is_named(tmp_path: Path, csv_lines: Lines) -> None:
    write_csv_slice(tmp_path, csv_lines)
    (tmp_path / "fashion-mnist_test.csv").unlink()
    _assert_refused(tmp_path, r"fashion-mnist_test.csv\(.gz\): file not found")


def test_empty_directory_without_download_is_refused(tmp_path: Path) -> None:
    _assert_refused(tmp_path, r"no Fashion-MNIST files")


def _break_idx(name: str, mutate: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def apply(directory: Path) -> None:
        path = directory / name
        path.write_bytes(mutate(path.read_bytes()))

    return apply


IDX_CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "wrong magic": (
        _break_idx("train-images-idx3-ubyte", lambda content: bytes([0, 0, 8, 1]) + content[4:]),
        r"train-images-idx3-ubyte: wrong IDX magic number 0x00000801, expected 0x00000803",
    ),
    "labels with image magic": (
        _break_idx("t10k-labels-idx1-ubyte", lambda content: bytes([0, 0, 8, 3]) + content[4:]),
        r"t10k-labels-idx1-ubyte: wrong IDX magic number 0x00000803, expected 0x00000801",
    ),
    "size shorter than header says": (
        _break_idx("train-images-idx3-ubyte", lambda content: content[:-784]),
        r"header announces 300 records \(235200 bytes of data\) but the file holds 234416 bytes",
    ),
    "labels longer than header says": (
        _break_idx("train-labels-idx1-ubyte", lambda content: content + b"\x01"),
        r"train-labels-idx1-ubyte: header announces 300 records",
    ),
    "shorter than a header": (_break_idx("t10k-images-idx3-ubyte", lambda content: content[:10]), r"shorter than the 16-byte IDX header"),
    "empty file": (_break_idx("t10k-images-idx3-ubyte", lambda content: b""), r"t10k-images-idx3-ubyte: empty file"),
    "label outside 0..9": (
        _break_idx("train-labels-idx1-ubyte", lambda content: content[:8 + 17] + b"\x0c" + content[8 + 18:]),
        r"train-labels-idx1-ubyte: record 18: label 12 is outside 0..9",
    ),
}


@pytest.mark.parametrize("case", list(IDX_CASES))
def test_malformed_idx_is_refused(tmp_path: Path, dataset, case: str) -> None:
    write_idx_slice(tmp_path, dataset)
    mutate, pattern = IDX_CASES[case]
    mutate(tmp_path)
    _assert_refused(tmp_path, pattern)


def test_images_and_labels_of_different_lengths_are_refused(tmp_path: Path, dataset) -> None:
    write_idx_slice(tmp_path, dataset, compress=True)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(dataset.train.labels[:299])))
    _assert_refused(tmp_path, r"train-images-idx3-ubyte.gz: 300 images but train-labels-idx1-ubyte.gz has 299 labels")


def test_command_line_exits_non_zero_with_one_line(tmp_path: Path, csv_lines: Lines) -> None:
    write_csv_slice(tmp_path, _replace_cell(csv_lines, 5, 10, b"300"))
    finished = subprocess.run(
        [sys.executable, "-m", "fmnist", "--data-dir", str(tmp_path), "--no-download"],
        capture_output=True, text=True, cwd=REPOSITORY, check=False,
    )
    assert finished.returncode == 2
    assert finished.stderr.strip() == f"error: {tmp_path / 'fashion-mnist_train.csv'}: line 6: pixel10 = 300 is outside 0..255"
    assert not list(tmp_path.rglob("*.npz"))
