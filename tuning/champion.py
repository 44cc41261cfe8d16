"""The winner's one evaluation on the test set and its registration, as a Ray task.

The task loads the winning checkpoint, scores it on the untouched test split, logs the test metrics
and the model to the search's MLflow parent run and registers it. Running it on the cluster keeps
TensorFlow out of the driver (its memory and start-up time), and puts it next to the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
import ray
from ray import tune

from fmnist.data import Split
from fmnist.evaluation import evaluate
from fmnist.metrics import ClassificationMetrics
from tuning import registry


@dataclass(frozen=True)
class Champion:
    """The winner's test metrics and its registry version."""

    test_metrics: ClassificationMetrics
    registration: registry.Registration


def evaluate_and_register(
    checkpoint: tune.Checkpoint, test: Split, parent_run_id: str, model_name: str, tracking_uri: str
) -> Champion:
    """Score the checkpoint's model on `test` once, log the scores and the model, register it."""
    from tuning.trainable import load_checkpoint_model

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    model = load_checkpoint_model(checkpoint)
    test_metrics = evaluate(model, test).metrics
    registry.log_test_metrics(parent_run_id, test_metrics)
    registration = registry.register(parent_run_id, model, test, test_metrics.accuracy, model_name)
    return Champion(test_metrics, registration)


def evaluate_and_register_on_cluster(
    checkpoint: tune.Checkpoint, test: Split, parent_run_id: str, model_name: str, tracking_uri: str, cpus: float
) -> Champion:
    """`evaluate_and_register` in a Ray worker with `cpus` CPUs; returns what it returned."""
    task = ray.remote(num_cpus=cpus)(evaluate_and_register)
    return ray.get(task.remote(checkpoint, test, parent_run_id, model_name, tracking_uri))
