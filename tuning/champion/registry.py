"""The search's outcome in MLflow: test metrics, the logged model, its registry version and the champion.

The champion is chosen on validation, never on the test set: a version takes the alias when its validation score
beats the champion's by more than the standard error of their difference, on the same validation images (every search
of a dataset holds out the same ones). Its test accuracy is recorded once, for the reader.
"""

from __future__ import annotations

import math
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
from tuning.optimization.objective import mode
from tuning.runtime.error_text import first_line

if TYPE_CHECKING:
    import keras

CHAMPION_ALIAS = "champion"
TEST_ACCURACY_TAG = "test_accuracy"
VALIDATION_METRIC_TAG = "validation_metric"
VALIDATION_SCORE_TAG = "validation_score"
VALIDATION_SE_TAG = "validation_score_se"
VALIDATION_SET_TAG = "validation_set"
TEST_CONFUSION_MATRIX_ARTIFACT = "confusion_matrix/test.png"
CROWN_ATTEMPTS = 20


@dataclass(frozen=True)
class ValidationScore:
    """A model's score on a validation set, what the champion is chosen by: the metric's name and value, its standard
    error over the images scored, and the digest of those images (`Split.digest`)."""

    metric: str
    value: float
    standard_error: float
    validation_set: str

    def tags(self) -> dict[str, str]:
        """As a model version's tags."""
        return {VALIDATION_METRIC_TAG: self.metric, VALIDATION_SCORE_TAG: f"{self.value:.6f}",
                VALIDATION_SE_TAG: f"{self.standard_error:.6f}", VALIDATION_SET_TAG: self.validation_set}

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> ValidationScore | None:
        """The score a version's tags record, or None for a version registered without one."""
        if not {VALIDATION_METRIC_TAG, VALIDATION_SCORE_TAG, VALIDATION_SE_TAG, VALIDATION_SET_TAG} <= set(tags):
            return None
        return cls(tags[VALIDATION_METRIC_TAG], float(tags[VALIDATION_SCORE_TAG]), float(tags[VALIDATION_SE_TAG]),
                   tags[VALIDATION_SET_TAG])

    def comparable(self, other: ValidationScore) -> bool:
        """Scored by the same metric on the same images."""
        return self.metric == other.metric and self.validation_set == other.validation_set

    def margin(self, other: ValidationScore) -> float:
        """The standard error of the difference of two comparable scores (taken as independent)."""
        return math.hypot(self.standard_error, other.standard_error)

    def outranks(self, holder: ValidationScore) -> bool:
        """Whether this score takes the champion's place from `holder`: better by more than the margin, or scored on
        other images or by another metric (new data, another --validation-fraction or --metric starts afresh)."""
        if not self.comparable(holder):
            return True
        gain = self.value - holder.value if mode(self.metric) == "max" else holder.value - self.value
        return gain > self.margin(holder)


@dataclass(frozen=True)
class Registration:
    """The registered version, whether it became the champion, and why not when it did not."""

    model_name: str
    version: str
    model_uri: str
    promoted: bool
    standing: str
    """`now the champion`, or why the champion stays."""


def log_test_metrics(run_id: str, test_metrics: ClassificationMetrics) -> None:
    """Test metrics (macro and per class) and the test confusion matrix on the search's parent run."""
    client, now_ms = MlflowClient(), int(time.time() * 1000)
    client.log_batch(run_id, metrics=[
        mlflow.entities.Metric(name, value, timestamp=now_ms, step=0)
        for name, value in test_metrics.scalars(prefix="test_").items()
    ])
    image = confusion_matrix_image(test_metrics.confusion_matrix, title="Best trial on the test set")
    client.log_image(run_id, image, artifact_file=TEST_CONFUSION_MATRIX_ARTIFACT)


def register(run_id: str, model: keras.Model, test: Split, test_accuracy: float, validation: ValidationScore,
             model_name: str) -> Registration:
    """Log `model` (saved as .keras behind `served_model.PixelClassifier`; signature, input example), register
    it with its `validation` score and `test_accuracy` (reported, never used to choose), and make it the champion when
    its validation score outranks the champion's."""
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
    client = MlflowClient()
    for key, value in {**validation.tags(), TEST_ACCURACY_TAG: f"{test_accuracy:.6f}"}.items():
        client.set_model_version_tag(model_name, version, key, value)
    champion = crown(model_name)
    standing = "now the champion" if champion == version else _why_not(client, model_name, champion, validation)
    return Registration(model_name, version, f"models:/{model_name}/{version}", champion == version, standing)


def crown(model_name: str) -> str:
    """Point `champion` at the version `champion_version` names, then check and repeat until it stays. Every
    registration tags its version before calling this, so the last check to run sees every tag: two searches
    finishing at once leave the alias where the registry's history puts it, in whatever order their writes land. A
    set that the store refuses (the first two sets of the alias racing to insert it) is tried again."""
    client, refused = MlflowClient(), None
    for _ in range(CROWN_ATTEMPTS):
        best = champion_version(_scored_versions(client, model_name))
        try:
            client.set_registered_model_alias(model_name, CHAMPION_ALIAS, best)
        except mlflow.exceptions.RestException as error:  # two first sets of the alias at once: one insert loses
            refused = error
            continue
        champion = str(client.get_model_version_by_alias(model_name, CHAMPION_ALIAS).version)
        if champion_version(_scored_versions(client, model_name)) == best == champion:
            return best
    raise RuntimeError(f"the {CHAMPION_ALIAS} alias of {model_name} kept changing under {CROWN_ATTEMPTS} attempts to set it"
                       + (f" (last refusal: {first_line(refused)})" if refused else ""))


def champion_version(scored: list[tuple[int, ValidationScore]]) -> str:
    """The champion among `scored` versions (number, validation score): the first, then each later one that outranks
    the champion of its time; a function of the registry alone, so every registration computes the same one."""
    holder: tuple[int, ValidationScore] | None = None
    for version, score in sorted(scored, key=lambda pair: pair[0]):
        if holder is None or score.outranks(holder[1]):
            holder = (version, score)
    if holder is None:
        raise ValueError("no version records a validation score")
    return str(holder[0])


def _scored_versions(client: MlflowClient, model_name: str) -> list[tuple[int, ValidationScore]]:
    """Every version of `model_name` with the validation score its tags record (versions without one are left out)."""
    versions = [(int(version.version), ValidationScore.from_tags(version.tags))
                for version in client.search_model_versions(f"name = '{model_name}'")]
    return [(number, score) for number, score in versions if score is not None]


def _why_not(client: MlflowClient, model_name: str, champion: str, candidate: ValidationScore) -> str:
    """Why the champion stays: its score against the candidate's, and the margin the candidate had to clear."""
    held = ValidationScore.from_tags(client.get_model_version(model_name, champion).tags)
    assert held is not None, "the champion is always a scored version"
    return (f"version {champion} stays the champion ({held.value:.4f} against {candidate.value:.4f}, "
            f"margin {held.margin(candidate):.4f})")
