"""A Tune callback that adds the validation confusion matrix to TensorBoard, an image per epoch."""

from __future__ import annotations

import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from ray.tune.logger import LoggerCallback
from tensorboardX import FileWriter
from tensorboardX.proto.summary_pb2 import Summary

from tuning.tracking.confusion_images import ConfusionImage, epoch_confusion_image

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

IMAGE_TAG = "validation/confusion_matrix"


class TensorBoardConfusionMatrixCallback(LoggerCallback):
    """Writes `validation/confusion_matrix` images into each trial's TensorBoard log directory,
    beside the scalars and HParams of Tune's own TBXLoggerCallback.

    One thread of its own draws and writes them, in order, so Tune's result loop never waits for a
    drawing; a trial's end waits for its last image, the experiment's end for every one.
    """

    def __init__(self) -> None:
        self._writers: dict[str, FileWriter] = {}
        self._writer_thread: ThreadPoolExecutor | None = None

    def log_trial_result(self, iteration: int, trial: Trial, result: dict) -> None:
        image = epoch_confusion_image(trial.trial_id, result)
        if image is not None:
            trial.init_local_path()
            self._submit(self._write, trial.trial_id, trial.local_path, image)

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        """Waits for the trial's images: Tune copies its directory to the storage path right after."""
        wait([self._submit(self._close, trial.trial_id)])

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        """Wait until every image is written."""
        if self._writer_thread is not None:
            self._writer_thread.shutdown(wait=True)
            self._writer_thread = None

    def _submit(self, task: Callable[..., None], *arguments: Any) -> Future:
        if self._writer_thread is None:
            self._writer_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tensorboard-images")
        done = self._writer_thread.submit(task, *arguments)
        done.add_done_callback(_say_if_failed)
        return done

    def _write(self, trial_id: str, log_dir: str, image: ConfusionImage) -> None:
        if trial_id not in self._writers:
            self._writers[trial_id] = FileWriter(log_dir, filename_suffix=".confusion_matrix")
        # The PNG the MLflow callback sends too, as TensorBoard's image summary: encoded once for both.
        height, width = image.size
        summary = Summary(value=[Summary.Value(tag=IMAGE_TAG, image=Summary.Image(
            height=height, width=width, colorspace=3, encoded_image_string=image.png()))])
        self._writers[trial_id].add_summary(summary, global_step=image.epoch)
        self._writers[trial_id].flush()

    def _close(self, trial_id: str) -> None:
        writer = self._writers.pop(trial_id, None)
        if writer is not None:
            writer.close()


def _say_if_failed(done: Future) -> None:
    if done.exception() is not None:
        print(f"TensorBoard: a confusion-matrix image was not written: {done.exception()}", file=sys.stderr, flush=True)
