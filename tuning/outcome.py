"""Reading a finished `Tuner.fit()`: did it stop early, and which trial won."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ray import tune
from ray.tune.experiment import Trial

from tuning.objective import Mode

FINISHED_STATUSES = (Trial.TERMINATED, Trial.ERROR)


@dataclass(frozen=True)
class Winner:
    """The best trial over all its epochs, and the checkpoint of its best epoch."""

    trial_id: str
    config: dict[str, Any]
    checkpoint: tune.Checkpoint


def was_interrupted(trial_statuses: list[str], num_samples: int, time_budget_s: float | None, elapsed_s: float) -> bool:
    """Tune returns normally on Ctrl+C: before its time budget is spent, the search stopped early when
    a trial is unfinished or fewer trials than asked ran (`num_samples` -1: as many as the budget allows)."""
    if time_budget_s is not None and elapsed_s >= time_budget_s:
        return False
    unfinished = any(status not in FINISHED_STATUSES for status in trial_statuses)
    return unfinished or len(trial_statuses) < num_samples


def saved_trial_statuses(experiment_path: str) -> list[str]:
    """The status of every trial in Tune's saved experiment state."""
    return [trial.status for trial in tune.ExperimentAnalysis(experiment_path).trials]


def winner(results: tune.ResultGrid, metric: str, mode: Mode) -> Winner:
    """The trial with the best `metric` at any epoch (not only its last), and that epoch's checkpoint."""
    best = results.get_best_result(metric, mode, scope="all")
    checkpoint = best.get_best_checkpoint(metric, mode)
    if checkpoint is None or not best.metrics or best.config is None:
        raise RuntimeError(f"the best trial left no checkpoint under {best.path}")
    return Winner(best.metrics["trial_id"], best.config, checkpoint)
