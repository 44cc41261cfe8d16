"""Metrics from labels and predictions, the confusion-matrix image, and a model scored on a split."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from fmnist.data import CLASS_NAMES, Split
from fmnist.evaluation import evaluate
from fmnist.metrics import classification_metrics, confusion_matrix_figure, confusion_matrix_image


def test_metrics_match_a_hand_worked_example() -> None:
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 6, 7, 8, 9])
    predictions = np.array([0, 1, 1, 1, 2, 0, 3, 3, 4, 5, 6, 7, 8, 9])
    result = classification_metrics(labels, predictions)
    assert result.accuracy == pytest.approx(12 / 14)
    # class 0: precision 1/2, recall 1/2; class 1: precision 2/3, recall 1; class 2: precision 1, recall 1/2
    assert result.per_class_precision[:3] == pytest.approx([0.5, 2 / 3, 1.0])
    assert result.per_class_recall[:3] == pytest.approx([0.5, 1.0, 0.5])
    assert result.precision == pytest.approx((0.5 + 2 / 3 + 1 + 7) / 10)
    assert result.recall == pytest.approx((0.5 + 1 + 0.5 + 7) / 10)
    f1_class_1 = 2 * (2 / 3) / (2 / 3 + 1)
    assert result.f1 == pytest.approx((0.5 + f1_class_1 + 2 / 3 + 7) / 10)
    assert result.confusion_matrix.shape == (10, 10)
    assert result.confusion_matrix[0, 1] == 1 and result.confusion_matrix[2, 0] == 1
    assert result.confusion_matrix.sum() == len(labels)


def test_scalars_name_every_class() -> None:
    result = classification_metrics(np.arange(10), np.arange(10))
    scalars = result.scalars(prefix="val_")
    assert scalars["val_accuracy"] == 1.0 and scalars["val_f1"] == 1.0
    assert {"val_f1_T-shirt_top", "val_recall_Ankle_boot", "val_precision_Trouser"} <= set(scalars)
    assert len(scalars) == 4 + 3 * 10


def test_confusion_matrix_figure_is_labelled() -> None:
    matrix = classification_metrics(np.repeat(np.arange(10), 5), np.repeat(np.arange(10), 5)).confusion_matrix
    figure = confusion_matrix_figure(matrix, title="epoch 3")
    axes = figure.axes[0]
    assert [label.get_text() for label in axes.get_xticklabels()] == list(CLASS_NAMES)
    assert [label.get_text() for label in axes.get_yticklabels()] == list(CLASS_NAMES)
    assert axes.get_title() == "epoch 3"
    assert axes.get_xlabel() == "Predicted label" and axes.get_ylabel() == "True label"


def test_confusion_matrix_image_is_rgb() -> None:
    image = confusion_matrix_image(np.eye(10, dtype=int) * 7)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.shape[0] >= 500 and image.shape[1] >= 500
    assert image.min() < 100 and image.max() > 200, "the image is blank"


def test_importing_the_metrics_leaves_the_plot_backend_alone() -> None:
    code = ("import matplotlib; before = matplotlib.get_backend(); import fmnist.metrics, fmnist.evaluation; "
            "fmnist.metrics.confusion_matrix_image(__import__('numpy').eye(10, dtype=int)); "
            "print(before == matplotlib.get_backend(), matplotlib.rcParams['backend'])")
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={"MPLBACKEND": "svg", "PATH": ""})
    assert finished.stdout.split() == ["True", "svg"]


class _FixedClassifier:
    """A classifier whose probabilities are given: evaluation is scored on them, not on a model's luck."""

    def __init__(self, probabilities: np.ndarray) -> None:
        self.probabilities = probabilities

    def predict(self, x: np.ndarray, batch_size: int, verbose: int) -> np.ndarray:
        assert len(x) == len(self.probabilities)
        return self.probabilities


def test_evaluation_scores_loss_and_metrics_from_one_prediction() -> None:
    labels = np.array([0, 1, 2, 3], dtype=np.uint8)
    probabilities = np.full((4, 10), 0.05, dtype=np.float32)
    probabilities[[0, 1, 2, 3], [0, 1, 2, 0]] = 0.55  # the last image is predicted as class 0
    result = evaluate(_FixedClassifier(probabilities), Split(np.zeros((4, 28, 28), np.uint8), labels))
    assert result.metrics.accuracy == pytest.approx(0.75)
    assert result.loss == pytest.approx(-(3 * np.log(0.55) + np.log(0.05)) / 4, rel=1e-5)
    assert result.scalars("val_") == {"val_loss": result.loss, **{f"val_{name}": value
                                                                  for name, value in result.metrics.macro().items()}}
    assert set(result.metrics.macro()) == {"accuracy", "precision", "recall", "f1"}
