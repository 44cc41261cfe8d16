"""Parse and validate Fashion-MNIST files: Kaggle CSV or Zalando IDX, plain or gzipped."""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from fmnist.errors import DatasetError

IMAGE_SIDE = 28
PIXELS = IMAGE_SIDE * IMAGE_SIDE
NUM_CLASSES = 10
CSV_HEADER = ["label"] + [f"pixel{index}" for index in range(1, PIXELS + 1)]
IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension


def read_bytes(path: Path) -> bytes:
    """Return the file's content, gunzipped when its name ends in .gz."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise DatasetError(f"{path}: truncated or corrupt gzip ({error})") from None


def read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a Kaggle CSV (`label,pixel1..pixel784`) into uint8 images (N, 28, 28) and labels (N,)."""
    content = read_bytes(path)
    lines = content.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DatasetError(f"{path}: empty file")
    header = lines[0].decode("utf-8", errors="replace").strip().split(",")
    if header != CSV_HEADER:
        raise DatasetError(
            f"{path}: line 1: wrong header, expected 'label,pixel1,...,pixel{PIXELS}' "
            f"({len(CSV_HEADER)} columns), found {_abbreviate(lines[0])}"
        )
    if len(lines) == 1:
        raise DatasetError(f"{path}: no records after the header")
    expected_commas = len(CSV_HEADER) - 1
    for line_number, line in enumerate(lines[1:], start=2):
        if line.count(b",") != expected_commas:
            raise DatasetError(
                f"{path}: line {line_number}: expected {len(CSV_HEADER)} columns, "
                f"found {line.count(b',') + 1}"
            )
    frame = pd.read_csv(io.BytesIO(b"\n".join(lines)), engine="c", skip_blank_lines=False)
    return _validated_csv_arrays(path, frame)


def _validated_csv_arrays(path: Path, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Check cells column-wise with numpy (a record per row; file line = row + 2)."""
    for column_index, column in enumerate(frame.columns):
        if not pd.api.types.is_numeric_dtype(frame[column]):
            numeric = pd.to_numeric(frame[column], errors="coerce")
            bad_rows = np.flatnonzero(numeric.isna() & frame[column].notna())
            if len(bad_rows):
                row = int(bad_rows[0])
                raise DatasetError(
                    f"{path}: line {row + 2}: column '{CSV_HEADER[column_index]}' is not a number: "
                    f"{frame[column].iloc[row]!r}"
                )
            frame[column] = numeric
    numbers = frame.to_numpy(dtype=np.float64)
    missing = np.isnan(numbers)
    if missing.any():
        row, column = np.argwhere(missing)[0]
        raise DatasetError(f"{path}: line {row + 2}: missing value in column '{CSV_HEADER[column]}'")
    fractional = numbers != np.round(numbers)
    if fractional.any():
        row, column = np.argwhere(fractional)[0]
        raise DatasetError(
            f"{path}: line {row + 2}: column '{CSV_HEADER[column]}' is not an integer: {numbers[row, column]:g}"
        )
    labels, pixels = numbers[:, 0], numbers[:, 1:]
    _check_range(path, "label", labels, NUM_CLASSES - 1, lambda row: f"line {row + 2}")
    out_of_range = (pixels < 0) | (pixels > 255)
    if out_of_range.any():
        row, column = np.argwhere(out_of_range)[0]
        raise DatasetError(
            f"{path}: line {row + 2}: pixel{column + 1} = {pixels[row, column]:g} is outside 0..255"
        )
    images = pixels.astype(np.uint8).reshape(-1, IMAGE_SIDE, IMAGE_SIDE)
    return images, labels.astype(np.uint8)


def read_idx_images(path: Path) -> np.ndarray:
    """Read an IDX image file into uint8 images (N, 28, 28)."""
    content = read_bytes(path)
    count = _idx_count(path, content, IDX_IMAGES_MAGIC, header_size=16)
    rows, columns = (int.from_bytes(content[offset : offset + 4], "big") for offset in (8, 12))
    if (rows, columns) != (IMAGE_SIDE, IMAGE_SIDE):
        raise DatasetError(f"{path}: images are {rows}x{columns}, expected {IMAGE_SIDE}x{IMAGE_SIDE}")
    _check_idx_size(path, content, header_size=16, expected_items=count * PIXELS, count=count)
    return np.frombuffer(content, dtype=np.uint8, offset=16).reshape(count, IMAGE_SIDE, IMAGE_SIDE)


def read_idx_labels(path: Path) -> np.ndarray:
    """Read an IDX label file into uint8 labels (N,)."""
    content = read_bytes(path)
    count = _idx_count(path, content, IDX_LABELS_MAGIC, header_size=8)
    _check_idx_size(path, content, header_size=8, expected_items=count, count=count)
    labels = np.frombuffer(content, dtype=np.uint8, offset=8)
    _check_range(path, "label", labels, NUM_CLASSES - 1, lambda index: f"record {index + 1}")
    return labels


def check_same_length(images: np.ndarray, labels: np.ndarray, images_path: Path, labels_path: Path) -> None:
    """Fail when an image file and its label file hold different numbers of records."""
    if len(images) != len(labels):
        raise DatasetError(
            f"{images_path}: {len(images)} images but {labels_path.name} has {len(labels)} labels"
        )


def _idx_count(path: Path, content: bytes, magic: int, header_size: int) -> int:
    if len(content) == 0:
        raise DatasetError(f"{path}: empty file")
    if len(content) < header_size:
        raise DatasetError(f"{path}: {len(content)} bytes is shorter than the {header_size}-byte IDX header")
    found = int.from_bytes(content[:4], "big")
    if found != magic:
        raise DatasetError(f"{path}: wrong IDX magic number 0x{found:08x}, expected 0x{magic:08x}")
    return int.from_bytes(content[4:8], "big")


def _check_idx_size(path: Path, content: bytes, header_size: int, expected_items: int, count: int) -> None:
    found_items = len(content) - header_size
    if found_items != expected_items:
        raise DatasetError(
            f"{path}: header announces {count} records ({expected_items} bytes of data) "
            f"but the file holds {found_items} bytes of data"
        )


def _check_range(path: Path, what: str, values: np.ndarray, maximum: int, where) -> None:
    bad = (values < 0) | (values > maximum)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise DatasetError(f"{path}: {where(index)}: {what} {values[index]:g} is outside 0..{maximum}")


def _abbreviate(raw: bytes, limit: int = 60) -> str:
    text = raw.decode("utf-8", errors="replace").strip()
    return repr(text if len(text) <= limit else text[:limit] + "...")
