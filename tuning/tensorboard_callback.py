"""A Tune callback that adds the validation confusion matrix to TensorBoard, an image per epoch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ray.tune.logger import LoggerCallback
from tensorboardX import SummaryWriter

from tuning.confusion_images import epoch_image
from tuning.objective import EPOCH_KEY

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

IMAGE_TAG = "validation/confusion_matrix"


class TensorBoardConfusionMatrixCallback(LoggerCallback):
    """Writes `validation/confusion_matrix` images into each trial's TensorBoard log directory,
    beside the scalars and HParams of Tune's own TBXLoggerCallback."""

    def __init__(self) -> None:
        self._writers: dict[Trial, SummaryWriter] = {}

    def log_trial_result(self, iteration: int, trial: Trial, result: dict) -> None:
        image = epoch_image(trial.trial_id, result)
        if image is None:
            return
        if trial not in self._writers:
            trial.init_local_path()
            self._writers[trial] = SummaryWriter(trial.local_path, filename_suffix=".confusion_matrix")
        self._writers[trial].add_image(IMAGE_TAG, image, global_step=int(result[EPOCH_KEY]), dataformats="HWC")
        self._writers[trial].flush()

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        writer = self._writers.pop(trial, None)
        if writer is not None:
            writer.close()
