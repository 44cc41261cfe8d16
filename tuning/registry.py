"""The search's outcome in MLflow: test evaluation, the logged Keras model, registry version and champion."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import matplotlib.pyplot as plt
import mlflow
import mlflow.tensorflow
import numpy as np
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from fmnist.data import Split
from fmnist.metrics import ClassificationMetrics, classify, confusion_matrix_figure

CHAMPION_ALIAS = "champion"
TEST_ACCURACY_TAG = "test_accuracy"


@dataclass(frozen=True)
class Registration:
    """The registered version and whether it became the champion."""

    model_name: str
    version: str
    model_uri: str
    promoted: bool
    previous_champion_accuracy: float | None


def evaluate(model: keras.Model, test: Split) -> ClassificationMetrics:
    """Every metric of `model` on the test split (used once, after the search has chosen)."""
    probabilities = model.predict(test.images, batch_size=1024, verbose=0)
    return classify(test.labels, probabilities.argmax(axis=1))


def log_outcome(run_id: str, test_metrics: ClassificationMetrics) -> None:
    """Test metrics (macro and per class) and the test confusion matrix on the parent run."""
    client = MlflowClient()
    for name, value in test_metrics.scalars(prefix="test_").items():
        client.log_metric(run_id, name, value)
    figure = confusion_matrix_figure(test_metrics.confusion_matrix, title="Best trial on the test set")
    client.log_figure(run_id, figure, "confusion_matrix/test.png")
    plt.close(figure)


def register(run_id: str, model: keras.Model, test: Split, test_accuracy: float, model_name: str) -> Registration:
    """Log `model` (TensorFlow flavor, saved as .keras; signature, input example), register it, promote it if it beats the champion."""
    example = test.images[:5].astype(np.float32)
    signature = infer_signature(example, model.predict(example, verbose=0))
    with mlflow.start_run(run_id=run_id):
        info = mlflow.tensorflow.log_model(
            model, name="model", signature=signature, input_example=example, registered_model_name=model_name
        )
    version = str(info.registered_model_version)
    client = MlflowClient()
    client.set_model_version_tag(model_name, version, TEST_ACCURACY_TAG, f"{test_accuracy:.6f}")
    previous = champion_accuracy(model_name)
    promoted = previous is None or test_accuracy > previous
    if promoted:
        client.set_registered_model_alias(model_name, CHAMPION_ALIAS, version)
    return Registration(model_name, version, f"models:/{model_name}/{version}", promoted, previous)


def champion_accuracy(model_name: str) -> float | None:
    """The test accuracy recorded on the current champion, or None when there is none."""
    client = MlflowClient()
    try:
        champion = client.get_model_version_by_alias(model_name, CHAMPION_ALIAS)
    except mlflow.exceptions.MlflowException:
        return None
    recorded = champion.tags.get(TEST_ACCURACY_TAG)
    return float(recorded) if recorded is not None else None
