"""Classification metrics from labels and predictions, and the confusion-matrix figure.

Matplotlib is imported by the figure's functions only: the trials score every epoch but never draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    confusion_matrix,
    precision_recall_fscore_support,
)

from fmnist.data import CLASS_NAMES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CLASS_INDICES = list(range(len(CLASS_NAMES)))


@dataclass(frozen=True)
class ClassificationMetrics:
    """Accuracy, macro precision/recall/F1, the same per class, and the confusion matrix."""

    accuracy: float
    precision: float
    recall: float
    f1: float
    per_class_precision: np.ndarray
    per_class_recall: np.ndarray
    per_class_f1: np.ndarray
    confusion_matrix: np.ndarray

    def macro(self) -> dict[str, float]:
        """Accuracy and the macro averages by name: `accuracy`, `precision`, `recall`, `f1`."""
        return {"accuracy": self.accuracy, "precision": self.precision, "recall": self.recall, "f1": self.f1}

    def scalars(self, prefix: str = "") -> dict[str, float]:
        """Flat name -> value, e.g. `val_accuracy`, `val_f1`, `val_f1_Trouser`."""
        values = self.macro()
        for name, per_class in (
            ("precision", self.per_class_precision), ("recall", self.per_class_recall), ("f1", self.per_class_f1)
        ):
            for class_name, value in zip(CLASS_NAMES, per_class, strict=True):
                values[f"{name}_{metric_safe(class_name)}"] = float(value)
        return {f"{prefix}{name}": float(value) for name, value in values.items()}


def classification_metrics(labels: np.ndarray, predictions: np.ndarray) -> ClassificationMetrics:
    """Compute every metric from true labels and predicted labels (both integer class indices)."""
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predictions, labels=CLASS_INDICES, zero_division=0
    )
    return ClassificationMetrics(
        accuracy=float(np.mean(labels == predictions)),
        precision=float(precision.mean()),
        recall=float(recall.mean()),
        f1=float(f1.mean()),
        per_class_precision=precision,
        per_class_recall=recall,
        per_class_f1=f1,
        confusion_matrix=confusion_matrix(labels, predictions, labels=CLASS_INDICES),
    )


def confusion_matrix_figure(matrix: np.ndarray, title: str = "Confusion matrix") -> Figure:
    """A labelled confusion-matrix figure (rows: true class, columns: predicted class).

    A plain `Figure`, not pyplot's: making it touches no global state and no backend.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 7), dpi=100)
    axes = figure.add_subplot()
    ConfusionMatrixDisplay(matrix, display_labels=list(CLASS_NAMES)).plot(
        ax=axes, cmap="Blues", xticks_rotation=45, colorbar=False, values_format="d"
    )
    axes.set_title(title)
    figure.tight_layout()
    return figure


def confusion_matrix_image(matrix: np.ndarray, title: str = "Confusion matrix") -> np.ndarray:
    """The confusion-matrix figure as an RGB image, uint8 (height, width, 3), for MLflow and TensorBoard."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(confusion_matrix_figure(matrix, title))
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()


def metric_safe(class_name: str) -> str:
    """A class name usable in metric keys: 'T-shirt/top' -> 'T-shirt_top', 'Ankle boot' -> 'Ankle_boot'."""
    return class_name.replace("/", "_").replace(" ", "_")
