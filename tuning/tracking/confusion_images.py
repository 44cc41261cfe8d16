"""The per-epoch validation confusion matrix as an image, for the MLflow and TensorBoard callbacks.

Tune calls its callbacks in the loop that hands each trial its next epoch, so drawing there would hold up
training. The callbacks take a `ConfusionImage`, a light and picklable description, and draw it in their own
sender threads; the drawing is shared, so the two of them draw each epoch once. It is drawn with Pillow on a
frame drawn once: every trial's every epoch comes through the one driver, where a matplotlib figure an epoch
would take a CPU to itself once dozens of trials run at once (the champion's one test-set figure is matplotlib's).
"""

from __future__ import annotations

import functools
import io
import json
import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from fmnist.data import CLASS_NAMES
from tuning.optimization.objective import CONFUSION_MATRIX_KEY, EPOCH_KEY

_drawing = threading.Lock()


@dataclass(frozen=True)
class ConfusionImage:
    """A result's confusion matrix (as the trial reported it, JSON), its title and its epoch."""

    matrix_json: str
    title: str
    epoch: int

    @property
    def artifact_file(self) -> str:
        """Its MLflow artifact path: `confusion_matrix/epoch_NNN.png`."""
        return f"confusion_matrix/epoch_{self.epoch:03d}.png"

    @property
    def size(self) -> tuple[int, int]:
        """The image's height and width in pixels."""
        width, height = _frame().size
        return height, width

    def png(self) -> bytes:
        """The image as PNG; drawn and encoded once, then shared by every caller."""
        with _drawing:
            return _encoded(self.matrix_json, self.title)


def epoch_confusion_image(trial_id: str, result: dict) -> ConfusionImage | None:
    """The result's confusion matrix, or None when it carries none."""
    if CONFUSION_MATRIX_KEY not in result:
        return None
    epoch = int(result[EPOCH_KEY])
    return ConfusionImage(result[CONFUSION_MATRIX_KEY], f"{trial_id} validation, epoch {epoch}", epoch)


CELL, LEFT, TOP, BOTTOM, RIGHT = 40, 120, 36, 100, 16
"""The grid's cell size and the margins around it, in pixels: row labels left, the title above, column labels below."""


@functools.lru_cache(maxsize=16)
def _encoded(matrix_json: str, title: str) -> bytes:
    encoded = io.BytesIO()
    # zlib's fastest level: the image is flat colour, which it packs nearly as well as its default
    Image.fromarray(confusion_grid(np.array(json.loads(matrix_json)), title)).save(encoded, format="PNG", compress_level=1)
    return encoded.getvalue()


def confusion_grid(matrix: np.ndarray, title: str) -> np.ndarray:
    """The matrix as an RGB uint8 image: rows the true class, columns the predicted one, each cell its count on a
    blue shade by its share of the row."""
    picture = _frame().copy()
    draw = ImageDraw.Draw(picture)
    font, blues = _font(12), _blues()
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    for row, column in np.ndindex(matrix.shape):
        left, top = LEFT + column * CELL, TOP + row * CELL
        shade = int(np.round(shares[row, column] * 255))
        draw.rectangle((left, top, left + CELL - 1, top + CELL - 1), fill=blues[shade])
        draw.text((left + CELL / 2, top + CELL / 2), str(int(matrix[row, column])), anchor="mm", font=font,
                  fill="white" if shade > 140 else "black")
    draw.text((LEFT + len(CLASS_NAMES) * CELL / 2, TOP / 2), title, anchor="mm", font=_font(15), fill="black")
    return np.asarray(picture)


@functools.cache
def _frame() -> Image.Image:
    """The white canvas with the class names, the axis names and the grid's border: the same for every image."""
    size = len(CLASS_NAMES) * CELL
    picture = Image.new("RGB", (LEFT + size + RIGHT, TOP + size + BOTTOM), "white")
    draw = ImageDraw.Draw(picture)
    font = _font(12)
    for index, name in enumerate(CLASS_NAMES):
        draw.text((LEFT - 8, TOP + index * CELL + CELL / 2), name, anchor="rm", font=font, fill="black")
        label = Image.new("RGB", (BOTTOM - 30, CELL), "white")
        ImageDraw.Draw(label).text((BOTTOM - 30, CELL / 2), name, anchor="rm", font=font, fill="black")
        picture.paste(label.rotate(90, expand=True), (LEFT + index * CELL, TOP + size + 6))
    draw.text((LEFT + size / 2, TOP + size + BOTTOM - 12), "Predicted label", anchor="mm", font=font, fill="black")
    axis = Image.new("RGB", (size, 20), "white")
    ImageDraw.Draw(axis).text((size / 2, 10), "True label", anchor="mm", font=font, fill="black")
    picture.paste(axis.rotate(90, expand=True), (4, TOP))
    draw.rectangle((LEFT - 1, TOP - 1, LEFT + size, TOP + size), outline="black")
    return picture


@functools.cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size)


@functools.cache
def _blues() -> list[tuple[int, ...]]:
    """matplotlib's `Blues` colour map as 256 RGB colours, the shade of a cell by its share of its row."""
    from matplotlib import colormaps

    return [tuple(int(channel * 255) for channel in colormaps["Blues"](index)[:3]) for index in range(256)]

