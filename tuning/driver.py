"""The search's driver: check every input, then tune, evaluate the winner once on the test set, register it.

`prepare` does everything that can fail on bad input before anything is written; `run` searches.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray
from mlflow.exceptions import MlflowException
from ray import tune
from ray.exceptions import RayActorError, RayTaskError
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler
from sqlalchemy.exc import SQLAlchemyError

from fmnist.data import (
    DatasetError,
    FashionMNIST,
    Split,
    held_out_split,
    load,
)
from fmnist.locations import resolve_data_dir
from tuning.champion.evaluator import evaluate_and_register_on_cluster, start_champion_evaluator
from tuning.optimization import objective, outcome, screening, stored_study
from tuning.optimization.space import SearchSpace, SearchSpaceError, load_space
from tuning.optimization.study_searcher import StoredStudySearcher
from tuning.optimization.trainable import train_cnn
from tuning.optimization.unsaved_trials import set_aside_unsaved_trial_folders
from tuning.runtime import cluster
from tuning.runtime.error_text import first_line
from tuning.saved_search import SavedSearch, SavedSearchError, check_storage_writable
from tuning.settings import UNTIL_BUDGET, SearchSettings, SettingsError
from tuning.tracking import parent_run
from tuning.tracking.console import CompactProgressReporter, trial_number
from tuning.tracking.mlflow_callback import MLflowTrialsCallback
from tuning.tracking.summary import ModelSummary, summary_lines
from tuning.tracking.tensorboard_callback import TensorBoardConfusionMatrixCallback

CHECKPOINTS_KEPT = 2


INPUT_ERRORS = (
    SettingsError, SearchSpaceError, DatasetError, cluster.ClusterError, parent_run.TrackingError, SavedSearchError, stored_study.StudyError,
)


@dataclass(frozen=True)
class PreparedSearch:
    """A search whose inputs all checked out: ready for `run`. `saved` is set when it resumes."""

    settings: SearchSettings
    space: SearchSpace | None
    dataset: FashionMNIST
    experiment_id: str
    saved: SavedSearch | None
    warm_start: stored_study.WarmStart
    trial_cpus: float
    """`--cpus-per-trial`, `auto` resolved on the cluster the search joined."""
    concurrent_trials: int
    """`--max-concurrent-trials`, `auto` resolved on that cluster."""

    def mlflow_params(self) -> dict[str, str]:
        """The settings as the parent run's params, with the CPUs and concurrency the search uses, not `auto`."""
        return {**self.settings.mlflow_params(), "search.cpus_per_trial": f"{self.trial_cpus:g}",
                "search.max_concurrent_trials": str(self.concurrent_trials)}


def prepare(settings: SearchSettings, saved: SavedSearch | None) -> PreparedSearch:
    """Search space, data, study storage, Ray and MLflow for these settings (`saved` for `--resume`), all checked."""
    warm_start = stored_study.WarmStart([], 0)
    # Tune restores a resumed search's searcher, space included, from the saved experiment.
    space = load_space(settings.config) if saved is None else None
    check_storage_writable(settings.storage_path)
    dataset = load(settings.data_dir)
    if saved and dataset.digest != saved.dataset_digest:
        raise SettingsError(f"--resume: the dataset in {resolve_data_dir(settings.data_dir)} is not the one the search started on")
    storage = stored_study.existing_storage(settings.study_storage)
    if space is None:
        stored_study.check_exists(storage, settings.study_storage, settings.name)
    else:
        stored_study.check_new(storage, settings.study_storage, settings.name, settings.warm_start)
        if settings.screens:
            stored_study.check_new(storage, settings.study_storage, stored_study.screen_study_name(settings.name), ())
        if storage is not None:
            warm_start = stored_study.warm_start_trials(storage, settings.warm_start, space.optuna_distributions(), space.fixed,
                                                        scoring_terms(settings, dataset.digest))
    parent_run.check_server(settings.tracking_uri)
    cluster.connect(settings.address)
    nodes = cluster.live_nodes()
    trial_cpus = settings.trial_cpus(cluster.smallest_node_cpus(nodes),
                                     cluster.cpus_per_gpu_trial(nodes, settings.gpus_per_trial))
    nodes = cluster.nodes_once_a_trial_fits(trial_cpus, settings.gpus_per_trial, settings.wait_for_nodes_s)
    experiment_id = parent_run.ensure_experiment(settings.tracking_uri, settings.experiment_name)
    if saved:
        parent_run.check_run_exists(settings.tracking_uri, saved.parent_run_id)
    concurrent_trials = settings.concurrent_trials(cluster.total(nodes, "CPU"), trial_cpus, cluster.total(nodes, "GPU"))
    return PreparedSearch(settings, space, dataset, experiment_id, saved, warm_start, trial_cpus, concurrent_trials)


TrialFunction = Callable[..., None]
"""What a trial runs: `fn(config, *, train, validation, max_epochs, seed, deadline)`, reporting once an epoch with
`tune.report`, like `train_cnn`."""


@dataclass(frozen=True)
class FinishedSearch:
    """A search whose trials all ended: Tune's results, the search's MLflow run, its trials' MLflow callback (a resumed
    search's is Tune's own restored copy: None here) and the leading trials, best first."""

    results: tune.ResultGrid
    validation: Split
    """The validation split the trials scored on, which the champion is chosen on."""
    parent_run_id: str
    mlflow: MLflowTrialsCallback | None
    leaders: list[outcome.Leader]


def run(search: PreparedSearch) -> int:
    """Search, then evaluate the best trial on the test set and register it. Exit code 130 when interrupted."""
    # The evaluator's process loads its libraries while the trials train.
    evaluator = start_champion_evaluator(search.settings.tracking_uri)
    finished = search_trials(search, train_cnn)
    return finished if isinstance(finished, int) else crown_champion(search, finished, evaluator)


def search_trials(search: PreparedSearch, trial_function: TrialFunction) -> FinishedSearch | int:
    """Run the search's trials with `trial_function` until the search ends; its leaders, or the exit code of a search
    that was interrupted (130) or left no trial to choose from (1)."""
    settings, dataset = search.settings, search.dataset
    train, validation = training_splits(dataset.train, settings)
    # Trials fit their epochs to the budget's end. A resumed search has only what Tune kept of its budget, which
    # Tune does not tell: its trials keep the plans they had.
    new_budget = settings.time_budget_s is not None and search.space is not None
    deadline = time.time() + settings.time_budget_s if new_budget else None
    trainable = tune.with_resources(
        tune.with_parameters(trial_function, train=train, validation=validation, max_epochs=settings.max_epochs,
                             seed=settings.seed, deadline=deadline),
        {"cpu": search.trial_cpus, "gpu": settings.gpus_per_trial},
    )
    mlflow = None
    if search.space is None:
        assert search.saved is not None, "a search without a space is a resumed one"
        parent_run_id = search.saved.parent_run_id
        for folder in set_aside_unsaved_trial_folders(settings.experiment_path):
            print(f"{folder}: started after the interrupted search's last save; its files moved to interrupted-*/, "
                  "the trial starts again", file=sys.stderr)
        tuner = tune.Tuner.restore(settings.experiment_path, trainable, resume_errored=True)
        parent_run.set_parent_run_status(parent_run_id, "RUNNING")
    else:
        inputs = parent_run.dataset_inputs(train, validation, dataset.digest, resolve_data_dir(settings.data_dir))
        parent_run_id = parent_run.start_parent_run(
            search.experiment_id, settings.name, search.mlflow_params(), search.space.source, inputs
        )
        SavedSearch(settings, parent_run_id, dataset.digest).save()
        storage = stored_study.open_storage(settings.study_storage)
        fidelity = screening.Fidelity(round(len(train) * settings.screen_fraction), settings.screen_epochs,
                                      settings.screen_trial_seconds)
        first_trials = search.space.first_trials()
        if settings.screens:  # the points to evaluate are screened first; the full study starts with the best screened
            stored_study.create(storage, stored_study.screen_study_name(settings.name),
                                screening_terms(settings, dataset.digest, fidelity), first_trials, stored_study.WarmStart([], 0))
            first_trials = []
        stored_study.create(storage, settings.name, scoring_terms(settings, dataset.digest), first_trials, search.warm_start)
        if settings.warm_start:
            warm = search.warm_start
            parent_run.log_warm_start(parent_run_id, len(warm.trials), warm.skipped)
            print(f"warm start: {len(warm.trials)} trials from {', '.join(settings.warm_start)}, "
                  f"{warm.skipped} skipped (outside this search's space)")
            if warm.demoted:
                print(f"warm start: {warm.demoted} complete trials given as pruned, scored on other terms: "
                      f"{'; '.join(warm.differences)}")
        print(settings.plan_line(time.time()), flush=True)
        mlflow = MLflowTrialsCallback(settings.tracking_uri, search.experiment_id, parent_run_id, inputs)
        tuner = _new_tuner(settings, search.space, trainable, mlflow, deadline, search.concurrent_trials, fidelity)
    started = time.monotonic()
    results = tuner.fit()
    statuses = outcome.saved_trial_statuses(results.experiment_path)
    if outcome.was_interrupted(statuses, settings.num_samples, settings.time_budget_s, time.monotonic() - started):
        print(f"search interrupted; continue it with: python -m tuning.search --resume --name {settings.name} "
              f"--storage-path {settings.storage_path}", file=sys.stderr, flush=True)
        try:
            parent_run.set_parent_run_status(parent_run_id, "KILLED")
        except MlflowException as error:
            print(f"the search's MLflow run stays RUNNING ({first_line(error)})", file=sys.stderr)
        return 130
    _close_unfinished_trials(settings)
    if results.num_terminated == 0:
        print(f"error: all {len(results)} trials failed; the first: {results.errors[0]!s:.300}", file=sys.stderr)
        return 1
    leaders = outcome.leaders(results, settings.metric, settings.mode, settings.ensemble_size)
    if not leaders:
        print(f"error: no trial kept a checkpoint with a finite {settings.metric}", file=sys.stderr)
        return 1
    return FinishedSearch(results, validation, parent_run_id, mlflow, leaders)


def _close_unfinished_trials(settings: SearchSettings) -> None:
    """Close the trials the end of the budget left RUNNING in the search's studies; a database that cannot be reached
    now costs the search nothing but a line."""
    names = [settings.name, *([stored_study.screen_study_name(settings.name)] if settings.screens else [])]
    try:
        storage = stored_study.open_storage(settings.study_storage)
        for name in names:
            stored_study.close_unfinished(storage, name)
    except (stored_study.StudyError, SQLAlchemyError) as error:
        print(f"the study's trials still running at the end stay RUNNING ({first_line(error)})", file=sys.stderr)


def crown_champion(search: PreparedSearch, finished: FinishedSearch, evaluator: ray.actor.ActorHandle) -> int:
    """Evaluate the leaders on the test set with `evaluator` (`start_champion_evaluator`), register the champion, finish
    the search's run and print the summary."""
    settings, leaders = search.settings, finished.leaders
    try:
        champion = evaluate_and_register_on_cluster(
            evaluator, [leader.checkpoint for leader in leaders], finished.validation, search.dataset.test, settings.metric,
            finished.parent_run_id, settings.model_name,
        )
    except (RayActorError, RayTaskError) as error:
        print(f"error: the champion's evaluation failed ({_evaluation_failure(error)}); the trials are kept: evaluate it with "
              f"python -m tuning.search --resume --name {settings.name} --storage-path {settings.storage_path}",
              file=sys.stderr)
        return 1
    members = [leaders[index] for index in champion.members]
    parent_run.finish_parent_run(finished.parent_run_id, leaders[0].trial_id, leaders[0].config,
                                 [member.trial_id for member in members],
                                 {f"champion_{settings.metric}": champion.validation_score})
    shown = ModelSummary([trial_number(member.config) for member in members], champion.validation_score,
                         champion.test_metrics, champion.registration.model_uri, champion.registration.standing)
    print("\n" + "\n".join(summary_lines(finished.results, settings.metric, settings.mode, shown,
                                          finished.parent_run_id, settings.tracking_uri)))
    return 0


def _evaluation_failure(error: RayActorError | RayTaskError) -> str:
    """The first line of what went wrong: the exception the evaluator raised, or why its actor was lost."""
    cause = error.cause if isinstance(error, RayTaskError) else error
    return f"{type(cause).__name__}: {first_line(cause)}"


def scoring_terms(settings: SearchSettings, dataset_digest: str) -> stored_study.ScoringTerms:
    """What the search's study values mean, recorded on the study for later warm starts to compare."""
    return stored_study.ScoringTerms(settings.metric, objective.optuna_direction(settings.metric), settings.max_epochs,
                                     settings.train_size, dataset_digest, settings.validation_fraction)


def screening_terms(settings: SearchSettings, dataset_digest: str, fidelity: screening.Fidelity) -> stored_study.ScoringTerms:
    """What the screening study's values mean: the search's metric after the screening fidelity's epochs and images."""
    return dataclasses.replace(scoring_terms(settings, dataset_digest), max_epochs=fidelity.epochs,
                               train_size=fidelity.train_images)


def training_splits(training: Split, settings: SearchSettings) -> tuple[Split, Split]:
    """The training file as train (`train_size` images of it if set) and validation: the same validation images for
    every search with this `validation_fraction`, so their scores compare."""
    return held_out_split(training, settings.validation_fraction, settings.train_size, seed=settings.seed)


def _new_tuner(
    settings: SearchSettings, space: SearchSpace, trainable: Any, mlflow: MLflowTrialsCallback, deadline: float | None,
    concurrent_trials: int, fidelity: screening.Fidelity,
) -> tune.Tuner:
    own_seed, screen_seed = settings.sampler_seeds
    searcher = _searcher(settings, space, settings.name, settings.max_epochs, deadline, own_seed)
    if settings.screens:
        assert deadline is not None and settings.time_budget_s is not None, "a search screens only on a time budget"
        screen = _searcher(settings, space, stored_study.screen_study_name(settings.name), fidelity.epochs, deadline,
                           screen_seed)
        screen_until = deadline - settings.time_budget_s * (1 - settings.screen_share)
        searcher = screening.ScreeningSearcher(screen, searcher, fidelity, screen_until=screen_until,
                                               promoted=concurrent_trials)
    scheduler = ASHAScheduler(
        time_attr=objective.STEP_KEY, max_t=settings.max_epochs,
        grace_period=settings.grace_period, reduction_factor=settings.reduction_factor,
    )
    callbacks: list[tune.Callback] = [
        mlflow,
        TensorBoardConfusionMatrixCallback(),
    ]
    return tune.Tuner(
        trainable,
        param_space=dict(space.fixed),
        tune_config=tune.TuneConfig(
            metric=settings.metric, mode=settings.mode, search_alg=searcher, scheduler=scheduler,
            num_samples=settings.num_samples, max_concurrent_trials=concurrent_trials,
            time_budget_s=settings.time_budget_s, trial_name_creator=trial_name, trial_dirname_creator=trial_name,
            # A trial starts in the process of one that ended: no new process, no libraries loaded again.
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=settings.name,
            storage_path=settings.storage_uri,
            callbacks=callbacks,
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=CHECKPOINTS_KEPT, checkpoint_score_attribute=settings.metric,
                checkpoint_score_order=settings.mode,
            ),
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            progress_reporter=CompactProgressReporter(
                settings.metric, settings.mode, settings.max_epochs, time_budget_s=settings.time_budget_s,
                num_samples=None if settings.num_samples == UNTIL_BUDGET else settings.num_samples,
            ),
            verbose=1,
        ),
    )


def _searcher(settings: SearchSettings, space: SearchSpace, study_name: str, max_epochs: int,
              deadline: float | None, seed: int) -> StoredStudySearcher:
    return StoredStudySearcher(
        settings.study_storage, study_name, space.optuna_distributions(), metric=settings.metric, mode=settings.mode,
        max_epochs=max_epochs, seed=seed, startup_trials=settings.startup_trials, deadline=deadline,
    )


def trial_name(trial: Trial) -> str:
    """The trial's name and folder, `trial-<its number in the study>`: Tune's console and TensorBoard's run, MLflow's run
    name (the callback names runs after trials) and optuna-dashboard's number agree."""
    return objective.trial_name(trial.config, trial.trial_id)
