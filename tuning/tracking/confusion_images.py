"""The per-epoch validation confusion matrix as an image, for the MLflow and TensorBoard callbacks.

Tune calls its callbacks in the loop that hands each trial its next epoch, so drawing there (a
matplotlib figure, about 0.1 s) would hold up training. The callbacks take a `ConfusionImage`, a
light and picklable description, and draw it in their own sender threads; the drawing is shared, so
the two of them draw each epoch once.
"""

from __future__ import annotations

import functools
import json
import threading
from dataclasses import dataclass

import numpy as np

from fmnist.metrics import confusion_matrix_image
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

    def draw(self) -> np.ndarray:
        """RGB uint8 image (H, W, 3); drawn once, then shared by every caller."""
        with _drawing:
            return _drawn(self.matrix_json, self.title)


def epoch_confusion_image(trial_id: str, result: dict) -> ConfusionImage | None:
    """The result's confusion matrix, or None when it carries none."""
    if CONFUSION_MATRIX_KEY not in result:
        return None
    epoch = int(result[EPOCH_KEY])
    return ConfusionImage(result[CONFUSION_MATRIX_KEY], f"{trial_id} validation, epoch {epoch}", epoch)


@functools.lru_cache(maxsize=16)
def _drawn(matrix_json: str, title: str) -> np.ndarray:
    image = confusion_matrix_image(np.array(json.loads(matrix_json)), title)
    image.setflags(write=False)
    return image
