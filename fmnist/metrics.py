"""Classification metrics from labels and predictions, and the confusion-matrix figure."""

from __future__ import annotations

import io
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix, precision_recall_fscore_support  # noqa: E402

from fmnist.data import CLASS_NAMES  # noqa: E402

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

    def scalars(self, prefix: str = "") -> dict[str, float]:
        """Flat name -> value, e.g. `val_accuracy`, `val_f1`, `val_f1_Trouser`."""
        values = {"accuracy": self.accuracy, "precision": self.precision, "recall": self.recall, "f1": self.f1}
        for name, per_class in (
            ("precision", self.per_class_precision), ("recall", self.per_class_recall), ("f1", self.per_class_f1)
        ):
            for class_name, value in zip(CLASS_NAMES, per_class, strict=True):
                values[f"{name}_{metric_safe(class_name)}"] = float(value)
        return {f"{prefix}{name}": float(value) for name, value in values.items()}


def classify(labels: np.ndarray, predictions: np.ndarray) -> ClassificationMetrics:
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


def confusion_matrix_figure(matrix: np.ndarray, title: str = "Confusion matrix") -> plt.Figure:
    """A labelled confusion-matrix figure (rows: true class, columns: predicted class)."""
    figure, axes = plt.subplots(figsize=(8, 7), dpi=100)
    ConfusionMatrixDisplay(matrix, display_labels=list(CLASS_NAMES)).plot(
        ax=axes, cmap="Blues", xticks_rotation=45, colorbar=False, values_format="d"
    )
    axes.set_title(title)
    figure.tight_layout()
    return figure


def confusion_matrix_png(matrix: np.ndarray, title: str = "Confusion matrix") -> bytes:
    """The confusion-matrix figure encoded as PNG bytes."""
    figure = confusion_matrix_figure(matrix, title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def metric_safe(class_name: str) -> str:
    """A class name usable in metric keys: 'T-shirt/top' -> 'T-shirt_top', 'Ankle boot' -> 'Ankle_boot'."""
    return class_name.replace("/", "_").replace(" ", "_")
