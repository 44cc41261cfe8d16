"""A trained model on a labelled split: its loss and every classification metric, from one prediction pass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from fmnist.data import Split
from fmnist.metrics import ClassificationMetrics, classification_metrics

PREDICT_BATCH_SIZE = 1024
BOOTSTRAP_RESAMPLES = 200
PROBABILITY_FLOOR = 1e-7  # as Keras clips probabilities in its cross-entropy


class Classifier(Protocol):
    """Anything with Keras' `predict`: images (N, 28, 28) -> class probabilities (N, 10)."""

    def predict(self, x: np.ndarray, batch_size: int, verbose: int) -> np.ndarray: ...


@dataclass(frozen=True)
class Evaluation:
    """Mean cross-entropy (without label smoothing) and the classification metrics."""

    loss: float
    metrics: ClassificationMetrics

    def scalars(self, prefix: str = "") -> dict[str, float]:
        """The loss and the macro metrics by name, e.g. `val_loss`, `val_accuracy`, `val_f1`."""
        values = {"loss": self.loss, **self.metrics.macro()}
        return {f"{prefix}{name}": value for name, value in values.items()}


def evaluate(model: Classifier, split: Split) -> Evaluation:
    """Predict `split` once and score it."""
    return score(predict(model, split), split.labels)


def predict(model: Classifier, split: Split) -> np.ndarray:
    """The model's class probabilities (N, 10) for the split's images."""
    return np.asarray(model.predict(split.images, batch_size=PREDICT_BATCH_SIZE, verbose=0))


def score(probabilities: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Class probabilities (N, 10) against the true labels (N,)."""
    labels = labels.astype(np.int64)
    true_class_probability = np.clip(probabilities[np.arange(len(labels)), labels], PROBABILITY_FLOOR, 1.0)
    return Evaluation(
        loss=float(-np.mean(np.log(true_class_probability))),
        metrics=classification_metrics(labels, probabilities.argmax(axis=1)),
    )


def bootstrap_standard_error(probabilities: np.ndarray, labels: np.ndarray, metric: str, prefix: str = "val_",
                             resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> float:
    """The standard error of `metric` (a name from `Evaluation.scalars(prefix)`) over the images scored: its standard
    deviation across `resamples` resamplings of them with replacement."""
    generator = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        drawn = generator.integers(0, len(labels), len(labels))
        values.append(score(probabilities[drawn], labels[drawn]).scalars(prefix)[metric])
    return float(np.std(values, ddof=1))
