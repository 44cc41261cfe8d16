"""The per-epoch validation confusion matrix as an image, drawn once and shared by the MLflow and
TensorBoard callbacks (both see the same Tune result on the driver)."""

from __future__ import annotations

import functools
import io
import json

import matplotlib.image
import numpy as np

from fmnist.metrics import confusion_matrix_png
from tuning.trainable import CONFUSION_MATRIX_KEY


def epoch_image(trial_id: str, result: dict) -> np.ndarray | None:
    """RGB uint8 image (H, W, 3) of the result's confusion matrix, or None when it carries none."""
    if CONFUSION_MATRIX_KEY not in result:
        return None
    return _rendered(result[CONFUSION_MATRIX_KEY], f"{trial_id} validation, epoch {int(result['epoch'])}")


@functools.lru_cache(maxsize=16)
def _rendered(matrix_json: str, title: str) -> np.ndarray:
    png = confusion_matrix_png(np.array(json.loads(matrix_json)), title)
    image = (matplotlib.image.imread(io.BytesIO(png), format="png")[:, :, :3] * 255).round().astype(np.uint8)
    image.setflags(write=False)
    return image
