"""Reading a finished `Tuner.fit()`: did it stop early, and which trials lead."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ray import tune
from ray.tune.experiment import Trial

from tuning.optimization.objective import Mode

FINISHED_STATUSES = (Trial.TERMINATED, Trial.ERROR)


@dataclass(frozen=True)
class Leader:
    """A trial ranked by its best epoch, and the checkpoint of that epoch."""

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


def leaders(results: tune.ResultGrid, metric: str, mode: Mode, count: int) -> list[Leader]:
    """The `count` trials with the best `metric` at any kept epoch (not only their last), best first, each with that
    epoch's checkpoint. Trials that kept no checkpoint with a finite `metric` are left out."""
    best_of = max if mode == "max" else min
    scored: list[tuple[float, Leader]] = []
    for result in results:
        kept = [(float(metrics[metric]), checkpoint) for checkpoint, metrics in result.best_checkpoints or []
                if isinstance(metrics.get(metric), int | float) and math.isfinite(metrics[metric])]
        if kept and result.config is not None and result.metrics:
            value, checkpoint = best_of(kept, key=lambda pair: pair[0])
            scored.append((value, Leader(str(result.metrics["trial_id"]), result.config, checkpoint)))
    scored.sort(key=lambda pair: pair[0], reverse=mode == "max")
    return [trial for _, trial in scored[:count]]
