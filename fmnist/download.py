"""Fetch the four official Fashion-MNIST IDX files and check their published MD5 sums."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from fmnist.errors import DatasetError

MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
OFFICIAL_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}


def download_official(
    data_dir: Path, mirror: str = MIRROR, checksums: dict[str, str] = OFFICIAL_MD5, timeout: float = 30.0
) -> list[Path]:
    """Download the IDX files into `data_dir`, verified; a file lands only once its MD5 matches."""
    data_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, expected_md5 in checksums.items():
        target = data_dir / name
        if not target.exists():
            _fetch_verified(mirror + name, target, expected_md5, timeout)
        paths.append(target)
    return paths


def _fetch_verified(url: str, target: Path, expected_md5: str, timeout: float) -> None:
    handle, temporary_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        digest = hashlib.md5()
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != expected_md5:
            raise DatasetError(f"{url}: MD5 {digest.hexdigest()} does not match the published {expected_md5}")
        os.replace(temporary_name, target)
    except (urllib.error.URLError, OSError) as error:
        raise DatasetError(
            f"no Fashion-MNIST files in {target.parent} and the download of {url} failed ({error}); "
            "put the Kaggle CSVs (fashion-mnist_train.csv, fashion-mnist_test.csv) or the four IDX files "
            f"there, plain or .gz, or point --data-dir / FMNIST_DATA_DIR at them"
        ) from None
    finally:
        Path(temporary_name).unlink(missing_ok=True)
