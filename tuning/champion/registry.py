"""The search's outcome in MLflow: test metrics, the logged model, its registry version and the champion."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import numpy as np
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from fmnist.data import Split
from fmnist.metrics import ClassificationMetrics, confusion_matrix_image
from tuning.champion.served_model import KERAS_MODEL_ARTIFACT, PixelClassifier
from tuning.runtime.error_text import first_line

if TYPE_CHECKING:
    import keras

CHAMPION_ALIAS = "champion"
TEST_ACCURACY_TAG = "test_accuracy"
TEST_CONFUSION_MATRIX_ARTIFACT = "confusion_matrix/test.png"
CROWN_ATTEMPTS = 20


@dataclass(frozen=True)
class Registration:
    """The registered version and whether it became the champion."""

    model_name: str
    version: str
    model_uri: str
    promoted: bool
    previous_champion_accuracy: float | None


def log_test_metrics(run_id: str, test_metrics: ClassificationMetrics) -> None:
    """Test metrics (macro and per class) and the test confusion matrix on the search's parent run."""
    client, now_ms = MlflowClient(), int(time.time() * 1000)
    client.log_batch(run_id, metrics=[
        mlflow.entities.Metric(name, value, timestamp=now_ms, step=0)
        for name, value in test_metrics.scalars(prefix="test_").items()
    ])
    image = confusion_matrix_image(test_metrics.confusion_matrix, title="Best trial on the test set")
    client.log_image(run_id, image, artifact_file=TEST_CONFUSION_MATRIX_ARTIFACT)


def register(run_id: str, model: keras.Model, test: Split, test_accuracy: float, model_name: str) -> Registration:
    """Log `model` (saved as .keras behind `served_model.PixelClassifier`; signature, input example), register
    it, promote it if it beats the champion."""
    import keras
    import tensorflow as tf

    example = test.images[:5].astype(np.float32)
    signature = infer_signature(example, model.predict(example, verbose=0))
    was_interactive = keras.config.is_interactive_logging_enabled()
    keras.config.disable_interactive_logging()  # MLflow checks the input example with a predict that draws a progress bar
    try:
        with tempfile.TemporaryDirectory() as directory, mlflow.start_run(run_id=run_id):
            saved = Path(directory) / "model.keras"
            model.save(saved)
            info = mlflow.pyfunc.log_model(
                name="model", python_model=PixelClassifier(), artifacts={KERAS_MODEL_ARTIFACT: str(saved)},
                signature=signature, input_example=example, registered_model_name=model_name,
                pip_requirements=[f"tensorflow=={tf.__version__}", f"keras=={keras.__version__}",
                                  f"mlflow=={mlflow.__version__}"],
            )
    finally:
        if was_interactive:
            keras.config.enable_interactive_logging()
    version = str(info.registered_model_version)
    previous = champion_accuracy(model_name)
    MlflowClient().set_model_version_tag(model_name, version, TEST_ACCURACY_TAG, f"{test_accuracy:.6f}")
    promoted = crown_best_version(model_name) == version
    return Registration(model_name, version, f"models:/{model_name}/{version}", promoted, previous)


def crown_best_version(model_name: str) -> str:
    """Point `champion` at the version with the best recorded test accuracy (the earliest of equals), then
    check and repeat until it stays. Every registration tags its version before calling this, so the last
    check to run sees every tag: two searches finishing at once leave the alias on the better model,
    in whatever order their writes land. A set that the store refuses (the first two sets of the alias
    racing to insert it) is tried again."""
    client, refused = MlflowClient(), None
    for _ in range(CROWN_ATTEMPTS):
        best = _best_version(client, model_name)
        try:
            client.set_registered_model_alias(model_name, CHAMPION_ALIAS, best)
        except mlflow.exceptions.RestException as error:  # two first sets of the alias at once: one insert loses
            refused = error
            continue
        champion = str(client.get_model_version_by_alias(model_name, CHAMPION_ALIAS).version)
        if _best_version(client, model_name) == best == champion:
            return best
    raise RuntimeError(f"the {CHAMPION_ALIAS} alias of {model_name} kept changing under {CROWN_ATTEMPTS} attempts to set it"
                       + (f" (last refusal: {first_line(refused)})" if refused else ""))


def _best_version(client: MlflowClient, model_name: str) -> str:
    scored = [(float(version.tags[TEST_ACCURACY_TAG]), -int(version.version))
              for version in client.search_model_versions(f"name = '{model_name}'") if TEST_ACCURACY_TAG in version.tags]
    return str(-max(scored)[1])  # store versions are ints in SQL stores and strings over REST: compare as text


def champion_accuracy(model_name: str) -> float | None:
    """The test accuracy recorded on the current champion, or None when there is none."""
    client = MlflowClient()
    try:
        champion = client.get_model_version_by_alias(model_name, CHAMPION_ALIAS)
    except mlflow.exceptions.MlflowException:
        return None
    recorded = champion.tags.get(TEST_ACCURACY_TAG)
    return float(recorded) if recorded is not None else None
