"""A Ray Tune searcher over the search's stored Optuna study, through Optuna's ask-and-tell interface.

Unlike Ray's `OptunaSearch`, which tells Optuna that a trial ASHA stopped after one epoch is COMPLETE
with that epoch's value, this searcher tells Optuna what happened: a trial that trained all
`max_epochs` is COMPLETE with its best epoch's value (the epoch whose checkpoint can win); one stopped
earlier (by ASHA or the time budget) is PRUNED at its last epoch, as Optuna's own pruners would leave
it, so TPE does not learn from short-trained scores as if they were final. Every epoch's value is
stored as an intermediate value, so optuna-dashboard shows where trials were cut while they run.
An epoch reported twice (Tune runs it again when it restores a crashed driver's last saved state, which
can lag what the trials reported) keeps its first value, as in MLflow, and never reopens a finished trial.
With a deadline (the time budget's end), it starts no trial once even the fastest epoch seen could not end
before it: a trial that never reports would only leave an empty run behind.

The search is its study's one writer, so TPE reads an in-memory copy (Optuna's `InMemoryStorage`), loaded from the
database when the searcher opens, and every change is written to both, the database first. An ask then costs TPE's
own work and one insert, not a re-read of every unfinished trial from the database, which grows with the trials
running at once.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import TrialState
from ray.tune.result import TIME_THIS_ITER_S, TRAINING_ITERATION
from ray.tune.search import Searcher
from sqlalchemy.exc import DBAPIError, OperationalError

from tuning.optimization import epoch_plan, stored_study
from tuning.optimization.objective import TRIAL_NUMBER_KEY
from tuning.runtime.error_text import first_line

Result = TypeVar("Result")
RETRY_AFTER_S = (1.0, 2.0, 3.0, 5.0, 5.0, 10.0, 10.0, 10.0, 15.0, 15.0, 15.0, 15.0)
"""Waits between attempts at a study-database call while the database is unreachable (about 2 minutes in
all: a PostgreSQL restart takes seconds). Trials keep training meanwhile; only Tune's bookkeeping waits."""


class StoredStudySearcher(Searcher):
    """Asks the stored study `study_name` for each trial's settings and tells it each epoch and each end."""

    def __init__(
        self, storage_url: str, study_name: str, distributions: dict[str, BaseDistribution], *,
        metric: str, mode: str, max_epochs: int, seed: int, startup_trials: int, deadline: float | None = None,
    ) -> None:
        super().__init__(metric=metric, mode=mode)
        self._storage_url, self._study_name = storage_url, study_name
        self._distributions, self._max_epochs, self._seed = distributions, max_epochs, seed
        self._startup_trials = startup_trials
        self._trial_numbers: dict[str, int] = {}
        """Tune trial id -> Optuna trial number: saved with the experiment, so a resumed search tells the same trials."""
        self._storage: optuna.storages.BaseStorage | None = None
        self._study: optuna.Study | None = None
        """The in-memory copy TPE samples from; `_storage` is the database."""
        self._memory: optuna.storages.InMemoryStorage | None = None
        self._stored_count = 0
        """Trials the database held when the searcher opened it: a smaller number is a trial written before."""
        self._stored_ids: dict[int, int] = {}
        """Optuna trial number -> the trial's id in the database, as it is first needed."""
        self._deadline = deadline
        """`time.time()` at the budget's end; not pickled: a resumed search has a budget of its own."""
        self._fastest_epoch_s: float | None = None

    @property
    def study(self) -> optuna.Study:
        """The study as this searcher holds it (a copy of the stored one, in memory), opened on first use."""
        return self._open()[1]

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        """The space, metric and mode are this searcher's own; Tune's `param_space` only adds fixed values."""
        return False

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.no_time_for_an_epoch():
            return Searcher.FINISHED
        trial = self.study.ask(self._distributions)
        trial.set_user_attr(stored_study.TUNE_TRIAL_ID_ATTR, trial_id)
        retrying(lambda: self._store_started(self._in_memory(trial.number)))
        self._trial_numbers[trial_id] = trial.number
        return {**trial.params, TRIAL_NUMBER_KEY: trial.number}

    def no_time_for_an_epoch(self) -> bool:
        """True when the deadline is nearer than the fastest epoch any trial has reported."""
        if self._deadline is None or self._fastest_epoch_s is None:
            return False
        return epoch_plan.replan(self._max_epochs, 0, self._fastest_epoch_s, self._deadline - time.time()) == 0

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        value, step, epoch_s = result.get(self.metric), result.get(TRAINING_ITERATION), result.get(TIME_THIS_ITER_S)
        if isinstance(epoch_s, int | float):
            fastest = self._fastest_epoch_s
            self._fastest_epoch_s = float(epoch_s) if fastest is None else min(float(epoch_s), fastest)
        if trial_id in self._trial_numbers and value is not None and step is not None:
            retrying(lambda: self._store_intermediate_value(self._trial_numbers[trial_id], int(step), float(value)))

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id not in self._trial_numbers:
            return
        if result and not error:  # a result that ends the trial comes here, not to on_trial_result
            self.on_trial_result(trial_id, result)
        retrying(lambda: self._tell_end(self._trial_numbers[trial_id], error))

    def _store_intermediate_value(self, number: int, step: int, value: float) -> None:
        told = self._in_memory(number)
        if told.state.is_finished() or step in told.intermediate_values:
            return  # an epoch Tune ran again after restoring a crashed driver's older state: its first report stands
        self._open()[0].set_trial_intermediate_value(self._stored_id(number), step, value)
        self._memory_storage().set_trial_intermediate_value(self._memory_id(number), step, value)

    def _tell_end(self, number: int, error: bool) -> None:
        trial = self._in_memory(number)
        if trial.state.is_finished():
            return
        if error or not trial.intermediate_values or trial.last_step is None:
            self._open()[0].set_trial_state_values(self._stored_id(number), TrialState.FAIL)
            self.study.tell(number, state=TrialState.FAIL)
        elif trial.last_step >= self._max_epochs:
            best = (max if self.mode == "max" else min)(trial.intermediate_values.values())
            self._open()[0].set_trial_state_values(self._stored_id(number), TrialState.COMPLETE, [best])
            self.study.tell(number, best)
        else:  # Optuna's own tell gives a pruned trial its last epoch's value
            last = trial.intermediate_values[trial.last_step]
            self._open()[0].set_trial_state_values(self._stored_id(number), TrialState.PRUNED, [last])
            self.study.tell(number, state=TrialState.PRUNED)

    def _store_started(self, trial: optuna.trial.FrozenTrial) -> None:
        """Write a trial just asked for, with its Tune trial id, to the database: a queued one (a point to evaluate)
        takes its settings and starts; a new one is added, and must get the number it has in memory."""
        storage, _ = self._open()
        if trial.number < self._stored_count:
            stored_id = self._stored_id(trial.number)
            started = storage.set_trial_state_values(stored_id, TrialState.RUNNING)
            for name, value in trial.params.items():
                distribution = trial.distributions[name]
                storage.set_trial_param(stored_id, name, distribution.to_internal_repr(value), distribution)
            storage.set_trial_user_attr(stored_id, stored_study.TUNE_TRIAL_ID_ATTR, trial.user_attrs[stored_study.TUNE_TRIAL_ID_ATTR])
        elif trial.number not in self._stored_ids:  # not written yet (a retried write may have been)
            stored_id = storage.create_new_trial(storage.get_study_id_from_name(self._study_name), template_trial=trial)
            self._stored_ids[trial.number] = stored_id
            started = storage.get_trial_number_from_id(stored_id) == trial.number
        else:
            stored_id, started = self._stored_ids[trial.number], True
        if not started:
            raise stored_study.StudyError(f"study {self._study_name}: another process changed its trials while this "
                                          "search ran; a study takes one search at a time")

    def _in_memory(self, number: int) -> optuna.trial.FrozenTrial:
        return self._memory_storage().get_trial(self._memory_id(number))

    def _memory_id(self, number: int) -> int:
        memory = self._memory_storage()
        return memory.get_trial_id_from_study_id_trial_number(memory.get_study_id_from_name(self._study_name), number)

    def _memory_storage(self) -> optuna.storages.InMemoryStorage:
        self._open()
        assert self._memory is not None, "opened"
        return self._memory

    def _stored_id(self, number: int) -> int:
        if number not in self._stored_ids:
            storage = self._open()[0]
            self._stored_ids[number] = storage.get_trial_id_from_study_id_trial_number(
                storage.get_study_id_from_name(self._study_name), number)
        return self._stored_ids[number]

    def save(self, checkpoint_path: str) -> None:
        Path(checkpoint_path).write_text(json.dumps({"trial_numbers": self._trial_numbers}))

    def restore(self, checkpoint_path: str) -> None:
        """Take back the trial map; a trial asked for but never started before the driver died is failed."""
        self._trial_numbers = json.loads(Path(checkpoint_path).read_text())["trial_numbers"]
        known = set(self._trial_numbers.values())
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if trial.number not in known:
                retrying(lambda number=trial.number: self._tell_end(number, error=True))

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles the searcher with the experiment: without its database connection."""
        return {**self.__dict__, "_storage": None, "_study": None, "_memory": None, "_stored_ids": {}, "_deadline": None}

    def _open(self) -> tuple[optuna.storages.BaseStorage, optuna.Study]:
        """Connect once and copy the stored study into memory; TPE is seeded by the seed and how many trials the study
        already holds (a resumed search does not replay its first suggestions)."""
        if self._storage is None or self._study is None:
            storage = stored_study.open_storage(self._storage_url)
            stored = retrying(lambda: optuna.load_study(study_name=self._study_name, storage=storage))
            trials = retrying(lambda: stored.get_trials(deepcopy=False))
            sampler = optuna.samplers.TPESampler(seed=self._seed + len(trials), n_startup_trials=self._startup_trials,
                                                 multivariate=True, constant_liar=True)
            self._memory = optuna.storages.InMemoryStorage()
            self._study = optuna.create_study(storage=self._memory, study_name=self._study_name, sampler=sampler,
                                              directions=stored.directions)
            self._study.add_trials(trials)
            self._storage, self._stored_count = storage, len(trials)
        return self._storage, self._study


def retrying(call: Callable[[], Result], waits: tuple[float, ...] = RETRY_AFTER_S) -> Result:
    """`call()`, called again after each wait in `waits` while the study database cannot be reached."""
    for wait in waits:
        try:
            return call()
        except (optuna.exceptions.StorageInternalError, DBAPIError) as error:
            lost = lost_connection(error)
            if lost is None:
                raise
            print(f"study database unreachable ({lost:.120}); trying again in {wait:g} s", file=sys.stderr, flush=True)
            time.sleep(wait)
    return call()


def lost_connection(error: Exception) -> str | None:
    """The first line of a lost or refused database connection behind `error` (Optuna wraps SQLAlchemy's), else None."""
    cause = error if isinstance(error, DBAPIError) else error.__cause__
    if isinstance(cause, DBAPIError) and (cause.connection_invalidated or isinstance(cause, OperationalError)):
        return first_line(cause.orig) if cause.orig is not None else type(cause).__name__
    return None
