"""The champion's one evaluation on the test set and its registration, in a Ray actor started with the search.

The actor loads the best checkpoints of the leading trials and picks the search's model on the validation split:
the average of those that greedy forward selection from the best trial keeps (`greedy_members`). It scores
that model once on the untouched test split, logs the test metrics and the model to the search's MLflow
parent run and registers it with its validation score and that score's standard error, by which the registry
decides whether it becomes the champion. Running it on the cluster keeps
TensorFlow out of the driver (its memory and start-up time). Started when the search starts, the actor
imports TensorFlow, Keras and MLflow and opens the MLflow store while the trials train, on a thread at the lowest
CPU priority, so the evaluation after the search does not wait for them and the trials lose no CPU to them. It runs
on the driver's node: it shares the driver's fate already (the driver owns it), so no other node's loss can take it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass

import mlflow
import numpy as np
import ray
from mlflow import MlflowClient
from ray import tune
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from fmnist.data import Split
from fmnist.ensemble import average
from fmnist.evaluation import bootstrap_standard_error, evaluate, predict, score
from fmnist.metrics import ClassificationMetrics
from tuning.champion import registry
from tuning.optimization import objective
from tuning.optimization.trainable import load_checkpoint_model

LOWEST_PRIORITY = 19
"""The largest nice value: the thread gets a CPU only when nothing else wants it."""


@dataclass(frozen=True)
class Champion:
    """The leading trials the champion averages (their places among the leaders, best first), its validation score, its
    test metrics and registry version."""

    members: tuple[int, ...]
    validation_score: float
    test_metrics: ClassificationMetrics
    registration: registry.Registration


class ChampionEvaluator:
    """A Ray actor (`start_champion_evaluator`) that evaluates and registers the winner once the search has one."""

    def __init__(self, tracking_uri: str) -> None:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        self.warm_up_priority: int | None = None
        self._warm_up = threading.Thread(target=self._warm_up_at_lowest_priority, name="champion-warm-up", daemon=True)
        self._warm_up.start()

    def warmed_up(self) -> int | None:
        """Wait for the start-up imports and the MLflow store; returns the nice value their thread ran at."""
        self._warm_up.join()
        return self.warm_up_priority

    def node_id(self) -> str:
        """The Ray node this evaluator runs on."""
        return ray.get_runtime_context().get_node_id()

    def evaluate_and_register(
        self, checkpoints: list[tune.Checkpoint], validation: Split, test: Split, metric: str, parent_run_id: str,
        model_name: str,
    ) -> Champion:
        """Pick the champion among averages of the leading trials' `checkpoints` (best first) by `metric` on
        `validation` (`greedy_members`), score it on `test` once, log the scores and the model, register it."""
        self._warm_up.join()
        models = [load_checkpoint_model(checkpoint) for checkpoint in checkpoints]
        probabilities = [predict(model, validation) for model in models]
        members, validation_score = greedy_members(probabilities, validation.labels, metric)
        chosen = np.mean([probabilities[index] for index in members], axis=0)
        scored = registry.ValidationScore(metric, validation_score,
                                          bootstrap_standard_error(chosen, validation.labels, metric), validation.digest())
        champion = average([models[index] for index in members])
        test_metrics = evaluate(champion, test).metrics
        registry.log_test_metrics(parent_run_id, test_metrics)
        registration = registry.register(parent_run_id, champion, test, test_metrics.accuracy, scored, model_name)
        return Champion(members, validation_score, test_metrics, registration)

    def _warm_up_at_lowest_priority(self) -> None:
        """Import what the evaluation needs and open the MLflow store (about a second for a SQLite file; MLflow keeps
        it for the process). Linux keeps a nice value per thread, so only this thread is lowered. A store that cannot
        be opened now is met again, and reported, by the evaluation."""
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, LOWEST_PRIORITY)
        self.warm_up_priority = os.getpriority(os.PRIO_PROCESS, thread)
        import keras  # noqa: F401
        import mlflow.pyfunc  # noqa: F401
        import tensorflow  # noqa: F401

        with contextlib.suppress(Exception):
            MlflowClient()


def start_champion_evaluator(tracking_uri: str) -> ray.actor.ActorHandle:
    """The evaluator actor for the search that tracks to `tracking_uri`, started now on the driver's node, where no
    other node's loss can take it (Ray ties an actor to its owner, so it dies with the driver anyway). It takes no
    CPU from Tune's count (the trials hold them while it waits). If its process dies it is restarted once, and its
    call waits for the restart: Ray retries the call until the actor has no restart left."""
    on_the_drivers_node = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    return ray.remote(num_cpus=0, max_restarts=1, max_task_retries=-1, scheduling_strategy=on_the_drivers_node)(
        ChampionEvaluator
    ).remote(tracking_uri)


def greedy_members(probabilities: list[np.ndarray], labels: np.ndarray, metric: str) -> tuple[tuple[int, ...], float]:
    """Which of the leading trials' validation `probabilities` (best first) to average, and that average's `metric` (a
    `val_` metric): greedy forward selection (Caruana et al., 2004) without replacement. It starts from the best trial
    and adds, one at a time, the trial whose addition scores best, while that beats the score so far, so the choice
    never scores below the best trial alone and a weak trial between two strong ones is left out."""
    sign = -1.0 if objective.mode(metric) == "min" else 1.0

    def scored(members: tuple[int, ...]) -> float:
        return score(np.mean([probabilities[index] for index in members], axis=0), labels).scalars(prefix="val_")[metric]

    chosen, chosen_score = (0,), scored((0,))
    while len(chosen) < len(probabilities):
        candidates = [(*chosen, index) for index in range(len(probabilities)) if index not in chosen]
        best_score, best = max(((scored(members), members) for members in candidates), key=lambda pair: sign * pair[0])
        if sign * best_score <= sign * chosen_score:
            break
        chosen, chosen_score = best, best_score
    return chosen, chosen_score


def evaluate_and_register_on_cluster(
    evaluator: ray.actor.ActorHandle, checkpoints: list[tune.Checkpoint], validation: Split, test: Split, metric: str,
    parent_run_id: str, model_name: str,
) -> Champion:
    """The evaluator actor's `evaluate_and_register`; returns what it returned."""
    return ray.get(evaluator.evaluate_and_register.remote(
        checkpoints, validation, test, metric, parent_run_id, model_name
    ))
