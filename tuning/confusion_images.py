"""The per-epoch validation confusion matrix as an image, drawn once and shared by the MLflow and
TensorBoard callbacks (both see the same Tune result on the driver)."""

from __future__ import annotations

import functools
import json

import numpy as np

from fmnist.metrics import confusion_matrix_image
from tuning.objective import CONFUSION_MATRIX_KEY, EPOCH_KEY


def epoch_image(trial_id: str, result: dict) -> np.ndarray | None:
    """RGB uint8 image (H, W, 3) of the result's confusion matrix, or None when it carries none."""
    if CONFUSION_MATRIX_KEY not in result:
        return None
    return _rendered(result[CONFUSION_MATRIX_KEY], f"{trial_id} validation, epoch {int(result[EPOCH_KEY])}")


def epoch_artifact(result: dict) -> str:
    """The MLflow artifact path of a result's confusion matrix: `confusion_matrix/epoch_NNN.png`."""
    return f"confusion_matrix/epoch_{int(result[EPOCH_KEY]):03d}.png"


@functools.lru_cache(maxsize=16)
def _rendered(matrix_json: str, title: str) -> np.ndarray:
    image = confusion_matrix_image(np.array(json.loads(matrix_json)), title)
    image.setflags(write=False)
    return image
