"""Metrics from labels and predictions, and the confusion-matrix PNG."""

from __future__ import annotations

import io

import matplotlib.image
import numpy as np
import pytest

from fmnist.data import CLASS_NAMES
from fmnist.metrics import classify, confusion_matrix_figure, confusion_matrix_png


def test_metrics_match_a_hand_worked_example() -> None:
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 6, 7, 8, 9])
    predictions = np.array([0, 1, 1, 1, 2, 0, 3, 3, 4, 5, 6, 7, 8, 9])
    result = classify(labels, predictions)
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
    result = classify(np.arange(10), np.arange(10))
    scalars = result.scalars(prefix="val_")
    assert scalars["val_accuracy"] == 1.0 and scalars["val_f1"] == 1.0
    assert {"val_f1_T-shirt_top", "val_recall_Ankle_boot", "val_precision_Trouser"} <= set(scalars)
    assert len(scalars) == 4 + 3 * 10


def test_confusion_matrix_figure_is_labelled() -> None:
    matrix = classify(np.repeat(np.arange(10), 5), np.repeat(np.arange(10), 5)).confusion_matrix
    figure = confusion_matrix_figure(matrix, title="epoch 3")
    axes = figure.axes[0]
    assert [label.get_text() for label in axes.get_xticklabels()] == list(CLASS_NAMES)
    assert [label.get_text() for label in axes.get_yticklabels()] == list(CLASS_NAMES)
    assert axes.get_title() == "epoch 3"
    assert axes.get_xlabel() == "Predicted label" and axes.get_ylabel() == "True label"


def test_confusion_matrix_png_decodes() -> None:
    png = confusion_matrix_png(np.eye(10, dtype=int) * 7)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert image.shape[0] >= 500 and image.shape[1] >= 500
