"""Any picture as a Fashion-MNIST image: 28x28 grey, the garment light on a dark background.

Zalando made Fashion-MNIST from product photos on white: trimmed to the garment, the longest edge resized to 28,
centred on 28x28, intensities negated, 8-bit grey. `to_fashion_mnist` does the same to an uploaded PNG or JPEG (any
size, colour or grey); an image that is already 28x28 is only made grey (and negated when its background is light),
so the dataset's own images come back unchanged.

Example:
    >>> to_fashion_mnist(Path("docs/examples/ankle-boot.png").read_bytes()).shape  # doctest: +SKIP
    (28, 28)
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

SIDE = 28
MAX_PIXELS = 25_000_000
"""The largest image decoded, in pixels (width x height): a 5,000 x 5,000 photo; larger ones are refused before
their pixels are decompressed."""
LIGHT_BACKGROUND = 128
"""A border brighter than this on average is a light background: the image is negated, as Zalando's were."""
TRIM_THRESHOLD = 16
"""After negation, pixels at or below this are background, trimmed from the edges."""


class ImageError(ValueError):
    """The bytes are not an image this service can read; the message says why in one line."""


class ImageTooLarge(ImageError):
    """The image holds more than `MAX_PIXELS` pixels."""


def to_fashion_mnist(data: bytes) -> np.ndarray:
    """The PNG or JPEG `data` as a (28, 28) uint8 Fashion-MNIST image."""
    grey = _grey(_open(data))
    if _border_mean(grey) > LIGHT_BACKGROUND:
        grey = ImageOps.invert(grey)
    if grey.size == (SIDE, SIDE):
        return np.asarray(grey, dtype=np.uint8)
    return np.asarray(_fit(grey), dtype=np.uint8)


def png(image: np.ndarray) -> bytes:
    """A (28, 28) uint8 image (or any grey array) as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _open(data: bytes) -> Image.Image:
    """The decoded image, checked for size before its pixels are decompressed."""
    if not data:
        raise ImageError("the image is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageTooLarge(f"the image is {width}x{height}: at most {MAX_PIXELS:,} pixels are read")
            if image.format not in ("PNG", "JPEG"):
                raise ImageError(f"a {image.format} image: send a PNG or a JPEG")
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge(f"the image has more than {MAX_PIXELS:,} pixels") from None
    except UnidentifiedImageError:
        raise ImageError("not a PNG or JPEG image") from None
    except (OSError, SyntaxError, ValueError) as error:
        if isinstance(error, ImageError):
            raise
        raise ImageError(f"the image cannot be decoded ({str(error).splitlines()[0][:120] or type(error).__name__})") from None
    return image


def _grey(image: Image.Image) -> Image.Image:
    """8-bit grey; transparent pixels become white, as on a product photo's background."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return image.convert("L")


def _border_mean(grey: Image.Image) -> float:
    pixels = np.asarray(grey, dtype=np.float64)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return float(border.mean())


def _fit(grey: Image.Image) -> Image.Image:
    """Trimmed to the garment, its longest edge resized to 28, centred on a black 28x28."""
    content = grey.point(lambda value: 255 if value > TRIM_THRESHOLD else 0).getbbox()
    if content is not None:
        grey = grey.crop(content)
    scale = SIDE / max(grey.size)
    resized = grey.resize((max(1, round(grey.width * scale)), max(1, round(grey.height * scale))), Image.Resampling.LANCZOS)
    canvas = Image.new("L", (SIDE, SIDE), 0)
    canvas.paste(resized, ((SIDE - resized.width) // 2, (SIDE - resized.height) // 2))
    return canvas
