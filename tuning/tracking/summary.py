"""The summary printed at the end of a search, within the console's 120 columns.

The leading trials as the live table shows them (their number in the study and the settings that differ between
them), the champion and its test scores, and where the full record is: `python -m tuning.report`, MLflow, TensorBoard.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from ray import tune

from fmnist.metrics import ClassificationMetrics
from tuning.optimization.objective import STEP_KEY, Mode
from tuning.runtime.stores import is_uri
from tuning.tracking.console import TRIAL_COLUMN, WIDTH, settings_text, trial_number, varying_settings

TOP_TRIALS = 5
SHOWN_METRICS = ("val_accuracy", "val_f1", "val_loss")
CONFIG_PREFIX = "config/"


@dataclass(frozen=True)
class ModelSummary:
    """The search's model as the summary shows it: the trials it averages (best first), its validation score, its test
    metrics, its registry URI and whether it became the champion (or why not)."""

    trials: list[str]
    validation_score: float
    test_metrics: ClassificationMetrics
    model_uri: str
    standing: str


def summary_lines(results: tune.ResultGrid, metric: str, mode: Mode, model: ModelSummary, parent_run_id: str,
                  tracking_uri: str) -> list[str]:
    """Top trials by their best epoch, the search's model (the trials it averages, best first) and its test metrics,
    where the runs, model and logs are; the table's rows cut to `WIDTH` columns."""
    frame = results.get_dataframe(filter_metric=metric, filter_mode=mode)
    frame = frame.sort_values(metric, ascending=mode == "min").head(TOP_TRIALS)
    configs = [_config(row) for _, row in frame.iterrows()]
    varying = varying_settings(configs)
    scores = list(dict.fromkeys((metric, *SHOWN_METRICS)))
    lines = [f"Top {len(frame)} of {len(results)} trials by {metric} (best epoch of each):",
             f"{'trial':<{TRIAL_COLUMN}} {'epoch':>5} " + " ".join(f"{name[:12]:>12}" for name in scores) + "  settings"]
    for (_, row), config in zip(frame.iterrows(), configs, strict=True):
        values = " ".join(f"{row[name]:>12.4f}" if name in row else f"{'-':>12}" for name in scores)
        lines.append(f"{trial_number(config):<{TRIAL_COLUMN}} {int(row[STEP_KEY]):>5} {values}  {settings_text(config, varying)}"[:WIDTH])
    lines.append("")
    if len(model.trials) > 1:
        lines.append(f"Champion: the average of trials {', '.join(model.trials)}, {metric} {model.validation_score:.4f}")
    else:
        lines.append(f"Champion: trial {model.trials[0]}, {metric} {model.validation_score:.4f}")
    test_metrics = model.test_metrics
    lines.append(f"Test set: accuracy {test_metrics.accuracy:.4f}, precision {test_metrics.precision:.4f}, "
                 f"recall {test_metrics.recall:.4f}, F1 {test_metrics.f1:.4f}")
    lines.append(f"Model: {model.model_uri}, {model.standing}")
    lines.append("Every trial with every setting: python -m tuning.report, or MLflow's run comparison")
    lines.append(f"MLflow: {tracking_uri}")
    lines.append(f"  the search's run: {parent_run_id}")
    lines.append(f"TensorBoard: tensorboard --logdir {_shortest(results.experiment_path)}")
    return lines


def _shortest(path: str) -> str:
    """`path` relative to the working folder when it lies below it, else as it is."""
    relative = path if is_uri(path) else os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _config(row: Any) -> dict[str, Any]:
    """The trial's config from its table row; a column only other trials have (a screening trial's) holds NaN: left out."""
    return {name.removeprefix(CONFIG_PREFIX): value for name, value in row.items()
            if name.startswith(CONFIG_PREFIX) and not (isinstance(value, float) and math.isnan(value))}
