"""`python -m tuning.search`: the whole search, from data to a registered champion.

Example:
    python -m tuning.search --smoke-test
    python -m tuning.search --num-samples 20 --max-epochs 10 --tracking-uri http://127.0.0.1:5000
"""

from __future__ import annotations

import socket
import sys
import time
from argparse import Namespace
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.optuna import OptunaSearch

from fmnist.data import DatasetError, FashionMNIST, load, resolve_data_dir, stratified_split, stratified_subset
from tuning import options as cli
from tuning import registry, search_state, tracking
from tuning.mlflow_logging import TrialRunsCallback
from tuning.space import SearchSpace, SearchSpaceError, load_space
from tuning.summary import print_summary
from tuning.tensorboard_images import ConfusionMatrixImagesCallback
from tuning.trainable import load_checkpoint_model, train_cnn


class ClusterError(RuntimeError):
    """Ray cannot be started or reached; the message names the address."""


def main(argv: list[str] | None = None) -> int:
    options = cli.parse(argv)
    try:
        space = load_space(options.config)
        dataset = load(options.data_dir)
        _init_ray(options.address)
        tracking_uri = tracking.resolve_tracking_uri(options.tracking_uri)
        experiment_id = tracking.connect(tracking_uri, options.experiment_name)
        return run(options, space, dataset, tracking_uri, experiment_id)
    except (SearchSpaceError, DatasetError, ClusterError, tracking.TrackingError, search_state.SearchStateError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def run(options: Namespace, space: SearchSpace, dataset: FashionMNIST, tracking_uri: str, experiment_id: str) -> int:
    """Search, then evaluate the best trial on the test set and register it."""
    training = dataset.train
    if options.train_size:
        training = stratified_subset(training, options.train_size, seed=options.seed)
    train, validation = stratified_split(training, options.validation_fraction, seed=options.seed)
    experiment_path = _storage_path(options.storage_path) + "/" + options.name
    trainable = tune.with_resources(
        tune.with_parameters(train_cnn, train=train, validation=validation, max_epochs=options.max_epochs, seed=options.seed),
        {"cpu": options.cpus_per_trial, "gpu": options.gpus_per_trial},
    )
    if options.resume:
        state = search_state.read(experiment_path)
        parent_run_id = state["parent_run_id"]
        tuner = tune.Tuner.restore(experiment_path, trainable, resume_errored=True)
    else:
        inputs = tracking.dataset_inputs(train, validation, dataset.digest, resolve_data_dir(options.data_dir))
        parent_run_id = tracking.start_parent_run(experiment_id, options.name, _parent_tags(options, dataset))
        tracking.log_search_settings(parent_run_id, _settings(options), space.source, inputs)
        tuner = _new_tuner(options, space, trainable, tracking_uri, parent_run_id, inputs)
        state = {"parent_run_id": parent_run_id, "num_samples": options.num_samples, "time_budget_s": options.time_budget_s}
        search_state.write(experiment_path, state)
    started = time.monotonic()
    results = tuner.fit()
    if _interrupted(results, state, time.monotonic() - started):
        print(f"search interrupted; continue it with: python -m tuning.search --resume --name {options.name} "
              f"--storage-path {options.storage_path}", file=sys.stderr)
        return 130
    if results.num_terminated == 0:
        print(f"error: all {len(results)} trials failed; the first: {results.errors[0]!s:.300}", file=sys.stderr)
        return 1
    best_trial_id, best_config, best_checkpoint = _winner(results, options.metric, options.mode)
    model = load_checkpoint_model(best_checkpoint)
    test_metrics = registry.evaluate(model, dataset.test)
    registry.log_outcome(parent_run_id, test_metrics)
    registration = registry.register(parent_run_id, model, dataset.test, test_metrics.accuracy, options.model_name)
    tracking.finish_parent_run(parent_run_id, best_trial_id, best_config)
    print_summary(results, options, test_metrics, registration, parent_run_id, tracking_uri)
    return 0


def _winner(results: tune.ResultGrid, metric: str, mode: str) -> tuple[str, dict[str, Any], tune.Checkpoint]:
    """The best trial over all its epochs: its id, config and the checkpoint of its best epoch."""
    best = results.get_best_result(metric, mode, scope="all")
    checkpoint = best.get_best_checkpoint(metric, mode)
    if checkpoint is None or not best.metrics or best.config is None:
        raise RuntimeError(f"the best trial left no checkpoint under {best.path}")
    return best.metrics["trial_id"], best.config, checkpoint


def _new_tuner(
    options: Namespace, space: SearchSpace, trainable: Any, tracking_uri: str, parent_run_id: str, inputs: list
) -> tune.Tuner:
    searcher = OptunaSearch(points_to_evaluate=[space.baseline()], seed=options.seed)
    scheduler = ASHAScheduler(
        time_attr="training_iteration", max_t=options.max_epochs,
        grace_period=options.grace_period, reduction_factor=options.reduction_factor,
    )
    callbacks: list[tune.Callback] = [
        TrialRunsCallback(tracking_uri, options.experiment_name, parent_run_id, inputs),
        ConfusionMatrixImagesCallback(),
    ]
    return tune.Tuner(
        trainable,
        param_space=space.tune_space(),
        tune_config=tune.TuneConfig(
            metric=options.metric, mode=options.mode, search_alg=searcher, scheduler=scheduler,
            num_samples=options.num_samples, max_concurrent_trials=options.max_concurrent_trials,
            time_budget_s=options.time_budget_s, trial_dirname_creator=trial_directory_name,
        ),
        run_config=tune.RunConfig(
            name=options.name,
            storage_path=_storage_path(options.storage_path),
            callbacks=callbacks,
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=2, checkpoint_score_attribute=options.metric, checkpoint_score_order=options.mode,
            ),
            failure_config=tune.FailureConfig(max_failures=options.max_failures),
            verbose=1,
        ),
    )


def trial_directory_name(trial: Trial) -> str:
    """Short trial folders (`train_cnn_<id>`): TensorBoard lists these as its runs."""
    return f"{trial.trainable_name}_{trial.trial_id}"


def _init_ray(address: str | None) -> None:
    """Start or join Ray; a plain host:port that refuses connections fails at once instead of retrying."""
    if address and ":" in address and "://" not in address:
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except (OSError, ValueError) as error:
            raise ClusterError(f"--address {address}: cannot start or reach Ray ({error})") from None
    try:
        ray.init(address=address, configure_logging=False, log_to_driver=False)
    except Exception as error:  # Ray raises ConnectionError, RuntimeError or ValueError here
        where = address or "a local Ray ($RAY_ADDRESS or a new local cluster)"
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ClusterError(f"--address {where}: cannot start or reach Ray ({first_line})") from None


def _interrupted(results: tune.ResultGrid, state: dict[str, Any], elapsed_s: float) -> bool:
    """Tune returns normally on Ctrl+C; its saved state then still holds unfinished trials."""
    saved = tune.ExperimentAnalysis(results.experiment_path).trials
    unfinished = any(trial.status not in (Trial.TERMINATED, Trial.ERROR) for trial in saved)
    budget = state.get("time_budget_s")
    budget_spent = budget is not None and elapsed_s >= budget
    return unfinished or (len(saved) < state["num_samples"] and not budget_spent)


def _parent_tags(options: Namespace, dataset: FashionMNIST) -> dict[str, str]:
    return {"search_name": options.name, "dataset_digest": dataset.digest, "selection_metric": options.metric}


def _settings(options: Namespace) -> dict[str, Any]:
    names = ("num_samples", "max_epochs", "grace_period", "reduction_factor", "max_concurrent_trials", "cpus_per_trial",
             "gpus_per_trial", "time_budget_s", "seed", "metric", "train_size", "validation_fraction")
    return {name: getattr(options, name) for name in names}


def _storage_path(storage_path: str) -> str:
    return storage_path if "://" in storage_path else str(Path(storage_path).resolve())


if __name__ == "__main__":
    sys.exit(main())
