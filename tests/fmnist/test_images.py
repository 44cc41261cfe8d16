"""Pictures as Fashion-MNIST images: the dataset's own images come back unchanged, others are fitted as Zalando's were."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fmnist import data
from fmnist.images import MAX_PIXELS, ImageError, ImageTooLarge, to_fashion_mnist


def encoded(array: np.ndarray, image_format: str = "PNG", mode: str = "L", **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).convert(mode).save(buffer, format=image_format, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def garments(dataset: data.FashionMNIST) -> np.ndarray:
    """One test image of each class."""
    return np.stack([dataset.test.images[np.flatnonzero(dataset.test.labels == label)[0]] for label in range(10)])


def test_the_datasets_images_come_back_unchanged_grey_colour_or_negated(garments: np.ndarray) -> None:
    for image in garments:
        np.testing.assert_array_equal(to_fashion_mnist(encoded(image)), image)
        np.testing.assert_array_equal(to_fashion_mnist(encoded(image, mode="RGB")), image)
        np.testing.assert_array_equal(to_fashion_mnist(encoded(255 - image)), image)  # a light background is negated
        assert np.abs(to_fashion_mnist(encoded(image, "JPEG", quality=95)).astype(int) - image).mean() < 3


def test_a_large_photo_on_white_is_trimmed_fitted_and_centred(garments: np.ndarray) -> None:
    """A product photo: the garment, 8x larger, off-centre on a wide white canvas."""
    boot = garments[9]
    photo = np.full((400, 640), 255, dtype=np.uint8)
    photo[40:264, 300:524] = 255 - np.kron(boot, np.ones((8, 8), dtype=np.uint8))
    fitted = to_fashion_mnist(encoded(photo, mode="RGB"))
    assert fitted.shape == (28, 28) and fitted.dtype == np.uint8
    assert fitted[[0, -1]].max() <= 16 or fitted[:, [0, -1]].max() <= 16, "dark background around the garment"
    rows, columns = np.nonzero(fitted > 16)
    assert abs((rows.min() + rows.max()) / 2 - 13.5) <= 1.5 and abs((columns.min() + columns.max()) / 2 - 13.5) <= 1.5
    assert max(rows.max() - rows.min(), columns.max() - columns.min()) >= 26, "the longest edge fills the 28 pixels"


def test_an_rgba_image_is_seen_on_white(garments: np.ndarray) -> None:
    rgba = np.zeros((28, 28, 4), dtype=np.uint8)
    rgba[..., :3], rgba[..., 3] = 0, garments[0]  # black paint whose opacity draws the T-shirt
    np.testing.assert_array_equal(to_fashion_mnist(encoded(rgba, mode="RGBA")), garments[0])


@pytest.mark.parametrize(("content", "error", "message"), [
    (b"", ImageError, "the image is empty"),
    (b"label,pixel1\n9,0\n", ImageError, "not a PNG or JPEG image"),
    (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", ImageError, "not a PNG or JPEG image"),
])
def test_what_is_not_an_image_is_named_in_one_line(content: bytes, error: type, message: str) -> None:
    with pytest.raises(error) as raised:
        to_fashion_mnist(content)
    assert str(raised.value) == message


def test_a_truncated_png_a_gif_and_a_50_megapixel_image_are_refused(garments: np.ndarray) -> None:
    with pytest.raises(ImageError, match="^the image cannot be decoded"):
        to_fashion_mnist(encoded(np.kron(garments[3], np.ones((20, 20), dtype=np.uint8)))[:400])
    with pytest.raises(ImageError, match="^a GIF image: send a PNG or a JPEG$"):
        to_fashion_mnist(encoded(garments[3], "GIF"))
    huge = encoded(np.zeros((5000, 10000), dtype=np.uint8))
    with pytest.raises(ImageTooLarge, match=f"^the image is 10000x5000: at most {MAX_PIXELS:,} pixels are read$"):
        to_fashion_mnist(huge)


def test_the_readmes_example_picture_is_the_ankle_boot_it_was_made_from(dataset: data.FashionMNIST) -> None:
    """docs/examples/ankle-boot.png: test image 7 (an ankle boot) negated, enlarged 8x and put off-centre on white."""
    picture = (Path(__file__).resolve().parents[2] / "docs" / "examples" / "ankle-boot.png").read_bytes()
    fitted = to_fashion_mnist(picture).astype(float)
    original = dataset.test.images[7].astype(float)
    assert dataset.test.labels[7] == 9
    assert np.corrcoef(fitted.ravel(), original.ravel())[0, 1] > 0.9
