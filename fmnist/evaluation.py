"""A trained model on a labelled split: its loss and every classification metric, from one prediction pass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from fmnist.data import Split
from fmnist.metrics import ClassificationMetrics, classification_metrics

PREDICT_BATCH_SIZE = 1024
PROBABILITY_FLOOR = 1e-7  # as Keras clips probabilities in its cross-entropy


class Classifier(Protocol):
    """Anything with Keras' `predict`: images (N, 28, 28) -> class probabilities (N, 10)."""

    def predict(self, x: np.ndarray, batch_size: int, verbose: int) -> np.ndarray: ...


@dataclass(frozen=True)
class Evaluation:
    """Mean cross-entropy (without label smoothing) and the classification metrics."""

    loss: float
    metrics: ClassificationMetrics


def evaluate(model: Classifier, split: Split) -> Evaluation:
    """Predict `split` once and score it."""
    probabilities = np.asarray(model.predict(split.images, batch_size=PREDICT_BATCH_SIZE, verbose=0))
    labels = split.labels.astype(np.int64)
    true_class_probability = np.clip(probabilities[np.arange(len(labels)), labels], PROBABILITY_FLOOR, 1.0)
    return Evaluation(
        loss=float(-np.mean(np.log(true_class_probability))),
        metrics=classification_metrics(labels, probabilities.argmax(axis=1)),
    )
