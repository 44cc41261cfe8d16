"""A Tune callback that adds the validation confusion matrix to TensorBoard, an image per epoch."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
from ray.tune.logger import LoggerCallback
from tensorboardX import SummaryWriter

from fmnist.metrics import confusion_matrix_figure
from tuning.trainable import CONFUSION_MATRIX_KEY

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

IMAGE_TAG = "validation/confusion_matrix"


class ConfusionMatrixImagesCallback(LoggerCallback):
    """Writes `validation/confusion_matrix` images into each trial's TensorBoard log directory,
    beside the scalars and HParams of Tune's own TBXLoggerCallback."""

    def __init__(self) -> None:
        self._writers: dict[Trial, SummaryWriter] = {}

    def log_trial_result(self, iteration: int, trial: Trial, result: dict) -> None:
        if CONFUSION_MATRIX_KEY not in result:
            return
        if trial not in self._writers:
            trial.init_local_path()
            self._writers[trial] = SummaryWriter(trial.local_path, filename_suffix=".confusion_matrix")
        matrix = np.array(json.loads(result[CONFUSION_MATRIX_KEY]))
        epoch = int(result["epoch"])
        figure = confusion_matrix_figure(matrix, title=f"{trial.trial_id} validation, epoch {epoch}")
        self._writers[trial].add_figure(IMAGE_TAG, figure, global_step=epoch, close=True)
        self._writers[trial].flush()
        plt.close(figure)

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        writer = self._writers.pop(trial, None)
        if writer is not None:
            writer.close()
