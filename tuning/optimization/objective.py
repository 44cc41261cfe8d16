"""What a trial reports and what the search optimises: the metric names and which way each is better.

The one home of these names: the trainable reports them, the CLI offers them as `--metric`, the
summary, the report and the callbacks read them.
"""

from __future__ import annotations

from typing import Any, Literal

Mode = Literal["min", "max"]

SELECTABLE_METRICS: tuple[str, ...] = ("val_accuracy", "val_f1", "val_precision", "val_recall", "val_loss")
CONFUSION_MATRIX_KEY = "val_confusion_matrix"
"""The result key of the validation confusion matrix, as JSON (a list of 10 rows of 10 counts)."""
TRIAL_NUMBER_KEY = "trial_number"
"""The config key of a trial's number in the search's Optuna study: the trial's one name everywhere (`trial_name`)."""
TRIAL_NAME_PREFIX = "trial-"
"""Every full-fidelity trial's name and folder starts so: `trial-<number>`."""
SCREEN_NAME_PREFIX = "screen-"
"""A screening trial's name and folder: `screen-<number>`, its number in the search's screening study."""
TRIAL_NAME_PREFIXES = (TRIAL_NAME_PREFIX, SCREEN_NAME_PREFIX)
SCREEN_IMAGES_KEY = "screen_train_images"
"""The config key of a screening trial's training images: a class-balanced subset of the search's training split."""
SCREEN_EPOCHS_KEY = "screen_epochs"
"""The config key of a screening trial's epochs: its complete, short schedule."""
SCREEN_SECONDS_KEY = "screen_most_seconds"
"""The config key of the most wall-clock seconds a screening trial may train: one whose pace says its schedule would end
later stops after the epoch that says so."""
FIDELITY_KEYS = (TRIAL_NUMBER_KEY, SCREEN_IMAGES_KEY, SCREEN_EPOCHS_KEY, SCREEN_SECONDS_KEY)
"""Config keys that say which trial it is and what it trains on, not how the model is built."""
STEP_KEY = "training_iteration"
"""Tune's count of a trial's results, one an epoch: the step of every per-epoch record and ASHA's time axis."""
EPOCH_KEY = "epoch"
DEVICE_KEY = "device"
"""The result key of what the trial trains on: `cpu`, or `gpu:` and the GPUs' names (`tuning.optimization.devices`)."""
PLANNED_EPOCHS_KEY = "planned_epochs"
"""The result key of the epochs a trial plans: `--max-epochs`, or fewer when the time budget ends sooner."""


def trial_name(config: dict[str, Any], fallback: str) -> str:
    """`trial-<number>` (`screen-<number>` for a screening trial): a trial's name in the console, the summary, its
    MLflow run and its TensorBoard folder, as optuna-dashboard numbers it in its study; `trial-<fallback>` for a config
    without a number."""
    return f"{name_prefix(config)}{config.get(TRIAL_NUMBER_KEY, fallback)}"


def name_prefix(config: dict[str, Any]) -> str:
    """`screen-` for a screening trial's config, else `trial-`."""
    return SCREEN_NAME_PREFIX if SCREEN_IMAGES_KEY in config else TRIAL_NAME_PREFIX


def mode(metric: str) -> Mode:
    """Losses are minimised, every other metric is maximised."""
    return "min" if metric.endswith("loss") else "max"


def optuna_direction(metric: str) -> Literal["minimize", "maximize"]:
    """The same rule, in Optuna's words."""
    return "minimize" if mode(metric) == "min" else "maximize"
