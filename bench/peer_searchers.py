"""The searchers users would pick instead of fmnist-tune, on the same data, space and model, in one process.

Usage (bench/compare_searchers.py runs it; by hand for one peer):
    python bench/peer_searchers.py PEER --workdir DIR --budget-s 600 [--max-epochs 9] [--seed 0] [--same-start]

  kerastuner   KerasTuner Hyperband (factor 3, max_epochs), one trial at a time
  optuna       Optuna TPE (its defaults: 10 random start-up trials) with its MedianPruner, ask-and-tell in one process
  random       random search (Optuna's RandomSampler), every trial trained to max_epochs, no early stopping
  original     no search: the original CNN (the space's baseline) trained by plain Keras for the whole budget
  first-point  no search: the space's first point to evaluate trained by plain Keras for the whole budget

--same-start gives a searcher the space's points to evaluate first, as fmnist-tune has them: Optuna enqueues them,
random search and KerasTuner train them to max_epochs before they search (Hyperband draws its configurations at
random and reads no defaults). Without it a searcher starts cold. Each peer's random stream is its own
(`stream_seed`): TPE's random start-up and random search draw other configurations from the same --seed.

Every peer trains `fmnist.model.build` of the default search space's settings on the split the search
uses, with all of the machine's cores. After each epoch it appends {timestamp, trial, epoch,
val_accuracy} to DIR/epochs.jsonl and, when the epoch is its trial's best so far, saves the model as
DIR/trials/<trial>.keras, keeping the leading trials' (as many as the search's --ensemble-size) for the comparison's
final-model step (bench/final_model.py). It stops starting epochs once --budget-s has passed since it started.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import optuna
from compare_searchers import CONTROLS, FINAL_MODEL_CANDIDATES, SEARCHING_PEERS, trial_model_path

from fmnist.config import ModelConfig
from fmnist.data import Split, load
from fmnist.evaluation import evaluate
from fmnist.model import build, learning_rate_callbacks, one_hot
from tuning.driver import training_splits
from tuning.optimization.epoch_plan import EpochPace, replan
from tuning.optimization.space import SearchSpace, load_space
from tuning.settings import SearchSettings

EPOCHS_FILE = "epochs.jsonl"
CONTROL_EPOCHS_CAP = 1_000
"""A control trains until the budget ends, whatever --max-epochs says."""
HYPERBAND_ITERATIONS = 100
"""Hyperband's brackets, repeated: enough that KerasTuner still searches when the budget ends."""


class BudgetSpent(BaseException):
    """The wall-clock budget is over: ends a peer's search from inside its training loop (not an Exception,
    so KerasTuner does not count it as a failed trial)."""


class EpochLog:
    """Appends each epoch's validation accuracy with its time, keeps the leading trials' best models, enforces the
    budget."""

    def __init__(self, workdir: Path, budget_s: float) -> None:
        self.path, self.workdir = workdir / EPOCHS_FILE, workdir
        self.deadline = time.time() + budget_s
        self.best: dict[int, float] = {}
        """Each trial's best validation accuracy so far."""

    def record(self, trial: int, epoch: int, val_accuracy: float, model: keras.Model) -> None:
        """Log one epoch; save the model when it is its trial's best so far and the trial leads."""
        with self.path.open("a") as file:
            file.write(json.dumps({"timestamp": time.time(), "trial": trial, "epoch": epoch, "val_accuracy": val_accuracy}) + "\n")
        if val_accuracy <= self.best.get(trial, -math.inf):
            return
        self.best[trial] = val_accuracy
        leading = sorted(self.best, key=self.best.__getitem__, reverse=True)[:FINAL_MODEL_CANDIDATES]
        if trial in leading:
            trial_model_path(self.workdir, trial).parent.mkdir(exist_ok=True)
            model.save(trial_model_path(self.workdir, trial))
        for trailing in set(self.best) - set(leading):
            trial_model_path(self.workdir, trailing).unlink(missing_ok=True)

    def check(self) -> None:
        """Raise BudgetSpent once the deadline has passed."""
        if time.time() >= self.deadline:
            raise BudgetSpent


def model_config(space: SearchSpace, params: dict[str, Any]) -> ModelConfig:
    """The CNN's settings for one trial: the sampled values over the space's fixed ones."""
    return ModelConfig.from_dict({**space.fixed, **params})


def train_epochs(
    config: ModelConfig, train: Split, validation: Split, max_epochs: int, log: EpochLog, trial: int,
    after_epoch: Callable[[int, float], bool] = lambda epoch, accuracy: False, deadline: float | None = None,
) -> float:
    """Train one trial up to `max_epochs`; `after_epoch` returns True to stop it early. With a `deadline`, the plan
    (and a cosine schedule with it) is fitted after each epoch to what fits before it, as a search's trial plans
    (`tuning.optimization.epoch_plan`). Returns its best accuracy."""
    model = build(config)
    targets, best = one_hot(train.labels), -math.inf
    planned, epoch, pace = max_epochs, 0, EpochPace()
    while epoch < planned:
        log.check()
        epoch += 1
        model.fit(train.images, targets, batch_size=config.batch_size, initial_epoch=epoch - 1, epochs=epoch, verbose=0,
                  callbacks=learning_rate_callbacks(config, planned))
        accuracy = evaluate(model, validation).metrics.accuracy
        log.record(trial, epoch, accuracy, model)
        best = max(best, accuracy)
        if after_epoch(epoch, accuracy):
            break
        if deadline is not None:
            planned = replan(planned, epoch, pace.epoch_ended(), deadline - time.time(), max_epochs)
    return best


def stream_seed(peer: str, seed: int) -> int:
    """The seed of `peer`'s random stream for the run seeded `seed`: apart per peer, so that TPE's random start-up
    and random search do not propose the same configurations."""
    return zlib.crc32(f"{peer}:{seed}".encode())


def peer_study(peer: str, seed: int, start_points: list[dict[str, Any]]) -> optuna.Study:
    """The Optuna study of `peer` (optuna: TPE with the MedianPruner; random: RandomSampler, no pruning), with
    `start_points` enqueued as its first trials."""
    if peer == "optuna":
        sampler: optuna.samplers.BaseSampler = optuna.samplers.TPESampler(seed=stream_seed(peer, seed))
        pruner: optuna.pruners.BasePruner = optuna.pruners.MedianPruner()
    else:
        sampler, pruner = optuna.samplers.RandomSampler(seed=stream_seed(peer, seed)), optuna.pruners.NopPruner()
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    for point in start_points:
        study.enqueue_trial(point)
    return study


def optuna_search(space: SearchSpace, train: Split, validation: Split, options: argparse.Namespace, log: EpochLog) -> None:
    """Optuna TPE with the MedianPruner, or random search without pruning, one trial after another."""
    study = peer_study(options.peer, options.seed, start_points(space, options))
    distributions = space.optuna_distributions()
    while True:
        trial = study.ask(distributions)

        def report(epoch: int, accuracy: float, trial: optuna.Trial = trial) -> bool:
            trial.report(accuracy, epoch)
            return trial.should_prune()

        best = train_epochs(model_config(space, trial.params), train, validation, options.max_epochs, log, trial.number, report)
        study.tell(trial, best)


def start_points(space: SearchSpace, options: argparse.Namespace) -> list[dict[str, Any]]:
    """The configurations a peer evaluates before it searches: the space's points with --same-start, else none."""
    return space.first_trials() if options.same_start else []


def train_control(space: SearchSpace, train: Split, validation: Split, options: argparse.Namespace, log: EpochLog) -> None:
    """One plain Keras training of the original CNN or of the space's first point, its epochs (and a cosine schedule)
    fitted to the whole budget: what every search must beat."""
    params = space.baseline() if options.peer == "original" else space.first_trials()[0]
    train_epochs(model_config(space, params), train, validation, CONTROL_EPOCHS_CAP, log, trial=0, deadline=log.deadline)


def kerastuner_search(space: SearchSpace, train: Split, validation: Split, options: argparse.Namespace, log: EpochLog) -> None:
    """KerasTuner Hyperband over the same space (its hyperparameters mirror the Optuna distributions)."""
    import keras_tuner

    distributions = space.optuna_distributions()

    def config_of(hp: keras_tuner.HyperParameters) -> ModelConfig:
        return model_config(space, {name: _hyperparameter(hp, name, distribution) for name, distribution in distributions.items()})

    class CNN(keras_tuner.HyperModel):
        def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
            return build(config_of(hp))

        def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args: Any, callbacks: list | None = None,
                **kwargs: Any) -> Any:
            config = config_of(hp)
            schedule = learning_rate_callbacks(config, options.max_epochs)
            return model.fit(*args, batch_size=config.batch_size, callbacks=[*(callbacks or []), *schedule], **kwargs)

    points = start_points(space, options)
    for trial, point in enumerate(points):
        train_epochs(model_config(space, point), train, validation, options.max_epochs, log, trial)
    trials = iter(range(len(points), 1_000_000))

    class Recorder(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict | None = None) -> None:
            log.check()
            self.trial = next(trials)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            log.record(self.trial, epoch + 1, float((logs or {})["val_accuracy"]), self.model)
            log.check()

    tuner = keras_tuner.Hyperband(
        CNN(), objective="val_accuracy", max_epochs=options.max_epochs, factor=3, hyperband_iterations=HYPERBAND_ITERATIONS,
        seed=stream_seed(options.peer, options.seed),
        directory=str(options.workdir), project_name="kerastuner", overwrite=True,
    )
    tuner.search(train.images, one_hot(train.labels), validation_data=(validation.images, one_hot(validation.labels)),
                 callbacks=[Recorder()], verbose=0)


def _hyperparameter(hp: Any, name: str, distribution: optuna.distributions.BaseDistribution) -> Any:
    """The KerasTuner hyperparameter with the same range as an Optuna distribution."""
    if isinstance(distribution, optuna.distributions.CategoricalDistribution):
        return hp.Choice(name, list(distribution.choices))
    if isinstance(distribution, optuna.distributions.IntDistribution):
        return hp.Int(name, distribution.low, distribution.high, step=distribution.step)
    assert isinstance(distribution, optuna.distributions.FloatDistribution)
    return hp.Float(name, distribution.low, distribution.high, sampling="log" if distribution.log else "linear")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("peer", choices=(*SEARCHING_PEERS, *CONTROLS))
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--budget-s", type=float, required=True)
    parser.add_argument("--max-epochs", type=int, default=SearchSettings.max_epochs)
    parser.add_argument("--train-size", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--same-start", action="store_true", help="evaluate the space's points to evaluate first")
    parser.add_argument("--data-dir", default=None)
    options = parser.parse_args()
    log = EpochLog(options.workdir, options.budget_s)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    settings = SearchSettings(name="peer", train_size=options.train_size, seed=options.seed)
    train, validation = training_splits(load(options.data_dir).train, settings)
    space = load_space(settings.config)
    keras.utils.set_random_seed(options.seed)
    search = {"kerastuner": kerastuner_search, "original": train_control, "first-point": train_control}.get(options.peer, optuna_search)
    try:
        search(space, train, validation, options, log)
    except BudgetSpent:
        pass


if __name__ == "__main__":
    main()
