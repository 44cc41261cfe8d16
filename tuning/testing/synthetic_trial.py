"""A trial that trains nothing, for measuring the search's own machinery at scale (`bench/scale.py`).

It takes the place of `train_cnn` in `tuning.driver.search_trials` and reports what `train_cnn` reports, once an epoch:
the same keys, a confusion matrix, a checkpoint of a set size. Its epoch is a sleep, so a 2-core host can hold dozens
of trials, and its score follows `learning_curve`, a known function of the config that TPE can learn. No TensorFlow.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from ray import tune

from fmnist.data import Split
from tuning.optimization.objective import CONFUSION_MATRIX_KEY, DEVICE_KEY, EPOCH_KEY, PLANNED_EPOCHS_KEY
from tuning.optimization.trainable import MODEL_FILE, STATE_FILE

CLASSES = 10


def learning_curve(config: dict[str, Any], epoch: int) -> float:
    """Validation accuracy after `epoch` epochs: best near learning rate 2e-3 and wide first layers, rising with epochs."""
    learning_rate_fit = math.exp(-(math.log10(config["learning_rate"]) - math.log10(2e-3)) ** 2)
    width = config.get("filters_1", 32) / 64
    ceiling = 0.80 + 0.10 * learning_rate_fit + 0.03 * min(width, 1.5)
    return ceiling - 0.25 * math.exp(-epoch / 3)


def best_possible(max_epochs: int) -> float:
    """The curve's highest value at `max_epochs`: what a perfect search would find."""
    return learning_curve({"learning_rate": 2e-3, "filters_1": 96}, max_epochs)


def sleeping_trial(epoch_s: float, checkpoint_bytes: int) -> Any:
    """A trial function for `search_trials` whose epochs sleep `epoch_s` and save `checkpoint_bytes`-byte checkpoints."""

    def synthetic_trial(config: dict[str, Any], *, train: Split, validation: Split, max_epochs: int, seed: int = 0,
                        deadline: float | None = None) -> None:
        epoch = _restored_epoch()
        labels = np.bincount(validation.labels, minlength=CLASSES)
        while epoch < max_epochs:
            epoch += 1
            started = time.perf_counter()
            time.sleep(epoch_s)
            accuracy = learning_curve(config, epoch)
            metrics = {EPOCH_KEY: epoch, DEVICE_KEY: "cpu", PLANNED_EPOCHS_KEY: max_epochs, "train_images": len(train),
                       "train_loss": 1 - accuracy, "train_accuracy": accuracy, **_validation_metrics(labels, accuracy),
                       "time_fit_s": time.perf_counter() - started, "time_validation_s": 0.0}
            with tempfile.TemporaryDirectory() as directory:
                (Path(directory) / MODEL_FILE).write_bytes(bytes(checkpoint_bytes))
                (Path(directory) / STATE_FILE).write_text(json.dumps({EPOCH_KEY: epoch, PLANNED_EPOCHS_KEY: max_epochs}))
                metrics["time_checkpoint_s"] = time.perf_counter() - started - epoch_s
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))

    return synthetic_trial


def _restored_epoch() -> int:
    """The epochs a restarted trial had finished, from its last checkpoint; 0 for a new trial."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return 0
    with checkpoint.as_directory() as directory:
        return int(json.loads((Path(directory) / STATE_FILE).read_text())[EPOCH_KEY])


def _validation_metrics(labels_per_class: np.ndarray, accuracy: float) -> dict[str, Any]:
    """The metrics `train_cnn` reports for a model of this accuracy: each class right `accuracy` of the time, its
    misses taken for the next class."""
    correct = np.round(labels_per_class * accuracy).astype(int)
    matrix = np.diag(correct)
    for label in range(CLASSES):
        matrix[label, (label + 1) % CLASSES] = labels_per_class[label] - correct[label]
    precision = np.diag(matrix) / np.maximum(matrix.sum(axis=0), 1)
    recall = np.diag(matrix) / np.maximum(matrix.sum(axis=1), 1)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    # accuracy itself, not the matrix's (whole counts of a small split would tie trials that the curve tells apart)
    return {"val_loss": 1 - accuracy, "val_accuracy": accuracy,
            "val_precision": float(precision.mean()), "val_recall": float(recall.mean()), "val_f1": float(f1.mean()),
            CONFUSION_MATRIX_KEY: json.dumps(matrix.tolist())}
