"""The settings of one search: built once from the command line, saved with the search, logged to MLflow.

Example:
    >>> settings = SearchSettings(name="demo", num_samples=4, max_epochs=2)
    >>> settings.mode
    'max'
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tuning.optimization import objective
from tuning.optimization.space import DEFAULT_SPACE_FILE
from tuning.runtime.stores import DEFAULT_MODEL_NAME, DEFAULT_STUDY_STORAGE, DEFAULT_TRACKING_URI, is_uri

DEFAULT_EXPERIMENT = "fmnist-tune"

UNTIL_BUDGET = -1
"""`num_samples` of a search that starts trials until its time budget ends (Tune's -1)."""
DEFAULT_TIME_BUDGET_S = 1200.0
"""The budget of a search given neither --time-budget-s nor --num-samples: a first run that ends when it says."""
SCREENED_MAX_EPOCHS = 1_000
"""--max-epochs of a search that screens, unless given: no count of its own, so the configurations screening promotes
train, their epochs fitted to the budget, until it ends, as a plain Keras fit of one configuration would."""
MIN_TRAIN_SIZE = 100  # a class-balanced subset needs a few images of each of the 10 classes

WHERE_IT_RUNS = frozenset({"address", "tracking_uri", "storage_path", "max_failures", "wait_for_nodes_s"})
"""Settings a resumed search may change: where it runs and how hard it retries, not what it searches."""
NOT_LOGGED = WHERE_IT_RUNS | {"study_storage"}
"""Settings kept out of MLflow's params: where things are, which may hold credentials."""


class SettingsError(ValueError):
    """A setting is out of range or contradicts a saved search; the message names the flag."""


@dataclass(frozen=True)
class SearchSettings:
    """Everything that decides a search: its data, its space, its budget and where it runs and reports."""

    name: str
    config: str = str(DEFAULT_SPACE_FILE)
    data_dir: str | None = None
    train_size: int | None = None
    validation_fraction: float = 0.1
    num_samples: int = 10
    max_epochs: int = 27
    """Long enough for the cosine schedules the search favours to pay off; ASHA stops most trials long before. A search
    that screens plans `SCREENED_MAX_EPOCHS` unless given: its time budget ends the plan."""
    grace_period: int = 3
    """ASHA's first rung; with a smaller --max-epochs and no --grace-period, that many epochs."""
    reduction_factor: float = 3.0
    max_concurrent_trials: int | None = None
    """None (`auto`): as many trials as the cluster's CPUs hold at the trials' CPUs each."""
    cpus_per_trial: float | None = None
    """None (`auto`): with a time budget, a whole node, since trials a core train no more images a second in all
    (docs/benchmarks.md, "Packing trials on 2 cores") and each result reaches TPE sooner; without one, 1, so a node
    runs a trial a core for ASHA to compare; with GPUs, a GPU node's CPUs shared by the trials its GPUs hold."""
    gpus_per_trial: float = 0.0
    time_budget_s: float | None = None
    seed: int = 0
    startup_trials: int = 4
    """Trials TPE proposes at random before it models the results (Optuna's `n_startup_trials`, default 10, too
    many for an hour on a small node); the points to evaluate count among them."""
    screen_share: float = 0.4
    """The share of a time budget spent screening configurations at a cheap fidelity before the best train on all the
    images (`tuning.optimization.screening`); 0: none. A search without a time budget does not screen."""
    screen_fraction: float = 0.5
    """A screening trial's share of the training images."""
    screen_epochs: int = 2
    """A screening trial's epochs: a complete schedule."""
    screen_trial_share: float = 0.5
    """The most of the screening stage's time one screening trial may train: one whose pace says it would take longer
    stops, PRUNED, so that a slow draw leaves the stage to others (`tuning.optimization.screening`)."""
    metric: str = "val_accuracy"
    ensemble_size: int = 3
    """The champion averages the class probabilities of the leading trials, of this many, that greedy forward selection
    on validation keeps (`tuning.champion.evaluator.greedy_members`; 1: the best trial alone)."""
    warm_start: tuple[str, ...] = ()
    max_failures: int = 2
    address: str | None = None
    wait_for_nodes_s: float = 0.0
    """When no live node can hold a trial, how long to wait for the cluster's autoscaler to add one (0: fail at once)."""
    storage_path: str = "results"
    tracking_uri: str = DEFAULT_TRACKING_URI
    study_storage: str = DEFAULT_STUDY_STORAGE
    experiment_name: str = DEFAULT_EXPERIMENT
    model_name: str = DEFAULT_MODEL_NAME

    @property
    def mode(self) -> objective.Mode:
        """`min` for a loss, else `max`."""
        return objective.mode(self.metric)

    @property
    def screens(self) -> bool:
        """True when the search starts with a screening stage: a time budget and a screening share above 0."""
        return self.time_budget_s is not None and self.screen_share > 0

    @property
    def sampler_seeds(self) -> tuple[int, int]:
        """The seeds of TPE over the search's own study and over its screening study: in a search that screens they
        differ, so that TPE's random start-up in its own study does not propose screening's draws again."""
        return (self.seed + 1 if self.screens else self.seed), self.seed

    @property
    def screen_trial_seconds(self) -> float | None:
        """The most wall-clock seconds a screening trial may train; None for a search that does not screen."""
        if not self.screens:
            return None
        assert self.time_budget_s is not None  # a search screens only on a time budget
        return self.time_budget_s * self.screen_share * self.screen_trial_share

    @property
    def storage_uri(self) -> str:
        """Tune's storage path: a URI as given, a local path made absolute."""
        return self.storage_path if is_uri(self.storage_path) else str(Path(self.storage_path).resolve())

    @property
    def experiment_path(self) -> str:
        """Where Tune keeps this search's trials and state."""
        return f"{self.storage_uri}/{self.name}"

    def trial_cpus(self, smallest_node_cpus: float, cpus_per_gpu_trial: float = 1.0) -> float:
        """`cpus_per_trial`, or for `auto`: with GPUs, `cpus_per_gpu_trial` (a GPU node's CPUs shared by the trials
        its GPUs hold); else a whole node (the smallest with CPUs) on a time budget, 1 without one."""
        if self.cpus_per_trial is not None:
            return self.cpus_per_trial
        if self.gpus_per_trial > 0:
            return cpus_per_gpu_trial
        return max(1.0, smallest_node_cpus) if self.time_budget_s is not None else 1.0

    def concurrent_trials(self, cluster_cpus: float, trial_cpus: float, cluster_gpus: float = 0.0) -> int:
        """`max_concurrent_trials`, or for `auto` how many trials the cluster's CPUs (and GPUs, when trials ask for
        them) hold at once."""
        if self.max_concurrent_trials is not None:
            return self.max_concurrent_trials
        trials = cluster_cpus // trial_cpus
        if self.gpus_per_trial > 0:
            trials = min(trials, cluster_gpus // self.gpus_per_trial)
        return max(1, int(trials))

    def plan_line(self, now: float) -> str:
        """What the search will do and when it ends, for its first line (`now` is `time.time()` at its start)."""
        if self.time_budget_s is None:
            epochs = f"{self.max_epochs} epoch" + ("s" if self.max_epochs != 1 else "")
            return f"searching {self.num_samples} trials of up to {epochs}, with no time budget; --time-budget-s to set one"
        ends = datetime.fromtimestamp(now + self.time_budget_s).strftime("%H:%M")
        trials = "trials" if self.num_samples == UNTIL_BUDGET else f"up to {self.num_samples} trials"
        return f"searching {trials} until {ends} ({_minutes(self.time_budget_s)}); --time-budget-s to change"

    def validate(self) -> None:
        """Raise SettingsError naming the first flag whose value cannot run."""
        if self.num_samples != UNTIL_BUDGET:
            _at_least("num_samples", self.num_samples, 1)
        elif self.time_budget_s is None:
            raise SettingsError(f"--num-samples {UNTIL_BUDGET} (trials until the budget ends) needs --time-budget-s")
        _at_least("max_epochs", self.max_epochs, 1)
        _at_least("grace_period", self.grace_period, 1)
        if self.max_concurrent_trials is not None:
            _at_least("max_concurrent_trials", self.max_concurrent_trials, 1)
        _at_least("seed", self.seed, 0)
        _at_least("screen_epochs", self.screen_epochs, 1)
        if not 0 <= self.screen_share < 1:
            raise SettingsError(f"--screen-share must be at least 0 and below 1, got {self.screen_share:g}")
        if not 0 < self.screen_fraction <= 1:
            raise SettingsError(f"--screen-fraction must be above 0 and at most 1, got {self.screen_fraction:g}")
        if not 0 < self.screen_trial_share <= 1:
            raise SettingsError(f"--screen-trial-share must be above 0 and at most 1, got {self.screen_trial_share:g}")
        _at_least("startup_trials", self.startup_trials, 1)
        _at_least("ensemble_size", self.ensemble_size, 1)
        _at_least("max_failures", self.max_failures, -1)
        _at_least("gpus_per_trial", self.gpus_per_trial, 0)
        _at_least("wait_for_nodes_s", self.wait_for_nodes_s, 0)
        if self.grace_period > self.max_epochs:
            raise SettingsError(f"--grace-period {self.grace_period} cannot exceed --max-epochs {self.max_epochs}")
        if not self.reduction_factor > 1:
            raise SettingsError(f"--reduction-factor must be above 1, got {self.reduction_factor:g}")
        if self.cpus_per_trial is not None and not self.cpus_per_trial > 0:
            raise SettingsError(f"--cpus-per-trial must be above 0, got {self.cpus_per_trial:g}")
        if not 0 < self.validation_fraction < 1:
            raise SettingsError(f"--validation-fraction must be between 0 and 1, got {self.validation_fraction:g}")
        if self.train_size is not None:
            _at_least("train_size", self.train_size, MIN_TRAIN_SIZE)
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise SettingsError(f"--time-budget-s must be above 0, got {self.time_budget_s:g}")
        if self.metric not in objective.SELECTABLE_METRICS:
            raise SettingsError(f"--metric must be one of {', '.join(objective.SELECTABLE_METRICS)}, got {self.metric!r}")
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise SettingsError(f"--name must be a plain folder name, got {self.name!r}")
        for source in self.warm_start:
            if not source or source == self.name:
                raise SettingsError(f"--warm-start must name an earlier search, got {source!r}")

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SearchSettings:
        """The settings saved by `to_dict`; unknown keys are an error, missing ones take their defaults."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SettingsError(f"saved settings hold an unknown setting {unknown[0]!r}")
        if "warm_start" in values:
            values = {**values, "warm_start": tuple(values["warm_start"])}
        return cls(**values)

    def mlflow_params(self) -> dict[str, str]:
        """What the search is, as `search.*` params for its MLflow parent run (not where it runs)."""
        return {
            f"search.{name}": ",".join(value) if isinstance(value, (tuple, list)) else str(value)
            for name, value in self.to_dict().items() if name not in NOT_LOGGED
        }

    def resumed_with(self, given: dict[str, Any]) -> SearchSettings:
        """These saved settings with the flags given to `--resume`; a flag that changes the search is refused."""
        for name, value in given.items():
            if name not in WHERE_IT_RUNS and value != getattr(self, name):
                raise SettingsError(
                    f"--resume: {flag(name)} {value} conflicts with the saved search's {getattr(self, name)}; "
                    f"drop the flag to continue the search as it was started"
                )
        return dataclasses.replace(self, **{name: value for name, value in given.items() if name in WHERE_IT_RUNS})


def flag(name: str) -> str:
    """The command-line flag of a setting: `train_size` -> `--train-size`."""
    return "--" + name.replace("_", "-")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _at_least(name: str, value: float, lowest: float) -> None:
    if value < lowest:
        raise SettingsError(f"{flag(name)} must be at least {lowest}, got {value}")
