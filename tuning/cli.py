"""The command line of `python -m tuning.search`, turned into `SearchSettings` once.

A new search takes its settings from the flags, filling the rest from `SearchSettings`' defaults; a
resumed one (`--resume --name X`) takes them from the saved search, and refuses a flag that would
change what it searches.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from fmnist.command_line import OneLineErrorParser
from fmnist.locations import DATA_DIR_HELP
from tuning.optimization import objective
from tuning.optimization.space import space_file
from tuning.runtime.command_line import STUDY_STORAGE_HELP, TRACKING_URI_HELP
from tuning.runtime.stores import resolve_study_storage, resolve_tracking_uri
from tuning.settings import (
    DEFAULT_TIME_BUDGET_S,
    SCREENED_MAX_EPOCHS,
    UNTIL_BUDGET,
    SearchSettings,
    flag,
)

SMOKE_TEST = {"num_samples": 2, "max_epochs": 1, "train_size": 2_000}
DEFAULTS = {field.name: field.default for field in dataclasses.fields(SearchSettings)}

Number = TypeVar("Number", int, float)


@dataclass(frozen=True)
class Command:
    """What was asked: a new search, or `--resume` of a saved one with the flags given explicitly."""

    resume: bool
    name: str | None
    given: dict[str, Any]

    def new_settings(self) -> SearchSettings:
        """Settings of a new search: the given flags over the defaults, the tracking URI resolved now."""
        values = dict(self.given)
        values["tracking_uri"] = resolve_tracking_uri(values.get("tracking_uri"))
        values["study_storage"] = resolve_study_storage(values.get("study_storage"))
        if "time_budget_s" not in values and "num_samples" not in values:
            values["time_budget_s"] = DEFAULT_TIME_BUDGET_S
        if "time_budget_s" in values:
            values.setdefault("num_samples", UNTIL_BUDGET)
            if values.get("screen_share", DEFAULTS["screen_share"]) > 0:
                values.setdefault("max_epochs", SCREENED_MAX_EPOCHS)
        if "max_epochs" in values:
            values.setdefault("grace_period", min(DEFAULTS["grace_period"], values["max_epochs"]))
        values.setdefault("address", os.environ.get("RAY_ADDRESS"))
        settings = SearchSettings(name=self.name or datetime.now().strftime("fmnist-search-%Y%m%d-%H%M%S"), **values)
        settings.validate()
        return settings

    def resume_flags(self) -> dict[str, Any]:
        """The flags given to `--resume`, their local databases made absolute as a new search's are, and where the
        saved search is."""
        values = {**self.given, "storage_path": self.resume_storage_path()}
        if "tracking_uri" in values:
            values["tracking_uri"] = resolve_tracking_uri(values["tracking_uri"])
        if "study_storage" in values:
            values["study_storage"] = resolve_study_storage(values["study_storage"])
        return values

    def resume_storage_path(self) -> str:
        """Where `--resume` looks for the saved search: `--storage-path`, else its default."""
        return self.given.get("storage_path", DEFAULTS["storage_path"])

    def resume_path(self) -> str:
        """The folder of the search to resume."""
        return SearchSettings(name=str(self.name), storage_path=self.resume_storage_path()).experiment_path


def build_parser() -> OneLineErrorParser:
    """Every flag, documented for `--help`. Defaults are shown but not set, so given flags stand out."""
    parser = OneLineErrorParser(
        prog="python -m tuning.search",
        description="Hyperparameter search for the Fashion-MNIST CNN: Optuna (TPE) proposes, ASHA stops "
        "weak trials early, MLflow and TensorBoard record every epoch, and the best trial is evaluated "
        "on the test set and registered in MLflow's model registry.",
        argument_default=argparse.SUPPRESS,
    )

    def setting(group: Any, name: str, help_text: str, **kwargs: Any) -> None:
        default = DEFAULTS[name]
        shown = "" if default is None else f" (default: {default:g})" if isinstance(default, float) else f" (default: {default})"
        group.add_argument(flag(name), dest=name, help=help_text + shown, **kwargs)

    space = parser.add_argument_group("search space and data")
    setting(space, "config", "search-space YAML file, or a packaged space: default (both layouts) or original (the "
            "original layout alone, trials about 4x as fast)", type=space_file)
    setting(space, "data_dir", DATA_DIR_HELP)
    setting(space, "train_size", "train on a class-balanced subset of this many images (validation stays the same)", type=int)
    setting(space, "validation_fraction", "share of the training file held out for validation (the same images for every search)", type=float)

    search = parser.add_argument_group("search")
    setting(search, "num_samples", "number of trials; with --time-budget-s and no --num-samples, trials start "
            "until the budget ends", type=int)
    setting(search, "max_epochs", "epochs for a trial that ASHA never stops; unless given, a search that screens "
            "plans as many as its --time-budget-s fits", type=int)
    setting(search, "grace_period", "ASHA: epochs before a trial can be stopped", type=int)
    setting(search, "reduction_factor", "ASHA: keep 1/this of trials at each rung", type=float)
    setting(search, "max_concurrent_trials", "trials running at once, or auto: as many as the cluster's CPUs hold "
            "at --cpus-per-trial each (default: auto)", type=_or_auto(int, "an integer"))
    setting(search, "cpus_per_trial", "CPUs reserved by each trial, or auto: a whole node with "
            "--time-budget-s, else 1 (default: auto)", type=_or_auto(float, "a number"))
    setting(search, "gpus_per_trial", "GPUs reserved by each trial", type=float)
    setting(search, "time_budget_s", "stop starting and running trials after this many seconds", type=float)
    setting(search, "seed", "seed of the TPE sampler, the split and the trials", type=int)
    setting(search, "startup_trials", "trials TPE proposes at random before it models the results", type=int)
    setting(search, "screen_share", "share of --time-budget-s spent screening configurations on a share of the "
            "images before the best train on all of them (0: no screening)", type=float)
    setting(search, "screen_fraction", "a screening trial's share of the training images", type=float)
    setting(search, "screen_epochs", "a screening trial's epochs, a complete schedule", type=int)
    setting(search, "screen_trial_share", "the most of the screening share one screening trial may train; one whose "
            "pace says it would take longer stops after that epoch", type=float)
    setting(search, "metric", "validation metric to select on (loss is minimised, the rest maximised)",
            choices=objective.SELECTABLE_METRICS)
    setting(search, "ensemble_size", "the champion averages the leading trials, of this many, that greedy selection "
            "on validation keeps (1: the best trial alone)", type=int)
    setting(search, "max_failures", "restarts of a failed trial, from its last checkpoint (-1: no limit)", type=int)
    search.add_argument("--warm-start", dest="warm_start", action="append", metavar="NAME",
                        help="seed the sampler with the finished trials of the earlier search NAME (repeatable); "
                        "trials outside this search's space are skipped")
    search.add_argument("--smoke-test", action="store_true", default=False,
                        help="2 trials, 1 epoch, 2,000 images: a run of seconds")

    where = parser.add_argument_group("where things run and go")
    setting(where, "address", "Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    setting(where, "wait_for_nodes_s", "on an autoscaling cluster: when no Ray node can hold a trial, ask the "
            "autoscaler for one and wait this many seconds", type=float)
    setting(where, "storage_path", "Tune results, checkpoints and TensorBoard logs (a path or URI shared by all nodes)")
    where.add_argument("--name", default=None,
                       help="the search's name: its folder under --storage-path and its MLflow run "
                       "(default: fmnist-search-<timestamp>)")
    where.add_argument("--resume", action="store_true", default=False,
                       help="continue the interrupted search --name under --storage-path, with its saved settings")
    setting(where, "tracking_uri", TRACKING_URI_HELP)
    setting(where, "study_storage", STUDY_STORAGE_HELP)
    setting(where, "experiment_name", "MLflow experiment")
    setting(where, "model_name", "MLflow registered model")
    return parser


def _or_auto(number: Callable[[str], Number], kind: str) -> Callable[[str], Number | None]:
    """A flag type: a `number` (an integer or a float), or None for `auto`."""
    def parse(text: str) -> Number | None:
        if text == "auto":
            return None
        try:
            return number(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind} or auto, got {text!r}") from None
    return parse


def parse(argv: list[str] | None = None) -> Command:
    """The flags as a Command (`--smoke-test` expanded); a malformed flag exits with one line."""
    parser = build_parser()
    namespace = vars(parser.parse_args(argv))
    resume, name, smoke_test = namespace.pop("resume"), namespace.pop("name"), namespace.pop("smoke_test")
    if resume and not name:
        parser.error("--resume needs --name (the search's folder under --storage-path)")
    if "warm_start" in namespace:
        namespace["warm_start"] = tuple(namespace["warm_start"])
    if smoke_test:
        namespace = {**SMOKE_TEST, **namespace}
    return Command(resume=resume, name=name, given=namespace)
