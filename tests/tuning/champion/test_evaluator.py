"""The champion: the evaluator actor loads its libraries and MLflow store without taking the trials' CPUs, lives on
the driver's node, and picks how many leading trials to average by their scores on validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import ray
from ray.cluster_utils import Cluster
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from tuning.champion.evaluator import LOWEST_PRIORITY, greedy_members, start_champion_evaluator


@pytest.mark.slow  # starts Ray
def test_the_evaluator_takes_no_cpu_slot_and_warms_up_at_the_lowest_priority(tmp_path: Path) -> None:
    """It imports its libraries and opens the search's MLflow store (here a new SQLite file) before it is asked."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    try:
        evaluator = start_champion_evaluator("sqlite:///" + str(tmp_path / "mlflow.db"))
        assert ray.get(evaluator.warmed_up.remote(), timeout=300) == LOWEST_PRIORITY
        assert (tmp_path / "mlflow.db").stat().st_size > 0, "the warm-up did not open the MLflow store"
        assert ray.available_resources().get("CPU") == 2, "the evaluator holds a CPU a trial could use"
    finally:
        ray.shutdown()


class CpuHolder:
    """Holds a CPU of its node, as a trial does."""

    def ready(self) -> bool:
        return True


@pytest.mark.slow  # starts Ray
def test_the_evaluator_stays_on_the_drivers_busy_node_and_outlives_a_lost_worker(tmp_path: Path) -> None:
    """Ray would put a CPU-less actor on an idle worker rather than the driver's busy node; a worker's loss
    must not take the evaluator with it."""
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    worker = cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, configure_logging=False, log_to_driver=False)
    try:
        drivers_node = ray.get_runtime_context().get_node_id()
        on_the_drivers_node = NodeAffinitySchedulingStrategy(drivers_node, soft=False)
        trial = ray.remote(num_cpus=1, scheduling_strategy=on_the_drivers_node)(CpuHolder).remote()
        ray.get(trial.ready.remote(), timeout=60)
        evaluator = start_champion_evaluator("sqlite:///" + str(tmp_path / "mlflow.db"))
        assert ray.get(evaluator.node_id.remote(), timeout=120) == drivers_node
        cluster.remove_node(worker, allow_graceful=False)
        assert ray.get(evaluator.warmed_up.remote(), timeout=300) == LOWEST_PRIORITY
    finally:
        ray.shutdown()
        cluster.shutdown()


def _probabilities(first_two_classes: list[tuple[float, float]]) -> np.ndarray:
    """Class probabilities of images whose mass lies on classes 0 and 1."""
    probabilities = np.zeros((len(first_two_classes), 10))
    probabilities[:, :2] = first_two_classes
    return probabilities


# Three images of class 0. FIRST and SECOND each miss a different one; their average gets all three. WRONG, sure of
# class 1 everywhere, pulls any average it joins over to class 1.
LABELS = np.zeros(3, dtype=np.int64)
FIRST = _probabilities([(0.9, 0.1), (0.9, 0.1), (0.4, 0.6)])
SECOND = _probabilities([(0.4, 0.6), (0.9, 0.1), (0.9, 0.1)])
WRONG = _probabilities([(0.0, 1.0), (0.0, 1.0), (0.0, 1.0)])


def test_the_champion_averages_the_trials_that_score_best_together() -> None:
    assert greedy_members([FIRST, SECOND, WRONG], LABELS, "val_accuracy") == ((0, 1), pytest.approx(1.0))
    assert greedy_members([FIRST, SECOND, WRONG], LABELS, "val_loss")[0] == (0, 1)


def test_a_weak_trial_between_two_strong_ones_is_left_out() -> None:
    assert greedy_members([FIRST, WRONG, SECOND], LABELS, "val_accuracy") == ((0, 2), pytest.approx(1.0))


def test_the_champion_starts_from_the_best_trial_and_adds_only_what_raises_its_score() -> None:
    assert greedy_members([FIRST, FIRST, FIRST], LABELS, "val_accuracy") == ((0,), pytest.approx(2 / 3))
    assert greedy_members([FIRST, WRONG], LABELS, "val_accuracy")[0] == (0,)
    assert greedy_members([FIRST], LABELS, "val_f1")[0] == (0,)
