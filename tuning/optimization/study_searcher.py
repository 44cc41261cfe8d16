"""A Ray Tune searcher over the search's stored Optuna study, through Optuna's ask-and-tell interface.

Unlike Ray's `OptunaSearch`, which tells Optuna that a trial ASHA stopped after one epoch is COMPLETE
with that epoch's value, this searcher tells Optuna what happened: a trial that trained every epoch of its
own plan (`max_epochs`, or fewer when the time budget shortened the plan and its learning-rate schedule with it)
is COMPLETE with its best epoch's value (the epoch whose checkpoint can win); one stopped before its plan ended
(by ASHA, or by the end of Tune's budget) is PRUNED at its last epoch, as Optuna's own pruners would leave it.
TPE ranks pruned trials by how far they got, so a trial that ended its shortened plan must not be one of them. Every epoch's value is
stored as an intermediate value, so optuna-dashboard shows where trials were cut while they run.
An epoch reported twice (Tune runs it again when it restores a crashed driver's last saved state, which
can lag what the trials reported) keeps its first value, as in MLflow, and never reopens a finished trial.
A trial the driver started after that last save, which the restored state does not know, is an orphan: the resumed
search's next trial takes it up, with its settings, number and name.
With a deadline (the time budget's end), it starts no trial once even the fastest epoch seen could not end
before it: a trial that never reports would only leave an empty run behind.

The search is its study's one writer, so TPE reads an in-memory copy (Optuna's `InMemoryStorage`), loaded from the
database when the searcher opens; every change goes to the copy at once and to the database through an ordered
queue sent by a thread of its own (`tuning.optimization.study_writer`), which Tune's saves of the experiment wait for.
An ask costs TPE's own work: no re-read of every unfinished trial, and no database round trip in Tune's loop.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import TrialState
from ray.tune.result import TIME_THIS_ITER_S, TRAINING_ITERATION
from ray.tune.search import Searcher

from tuning.optimization import epoch_plan, stored_study
from tuning.optimization.objective import PLANNED_EPOCHS_KEY, TRIAL_NUMBER_KEY
from tuning.optimization.study_writer import StudyWriter, retrying


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
        self._planned_epochs: dict[int, int] = {}
        """Optuna trial number -> the epochs its trial last planned (`max_epochs` until it says otherwise)."""
        self._orphans: list[int] = []
        """Optuna trials a crashed driver started after its last save: a resumed search's next trials take them up."""
        self._storage: optuna.storages.BaseStorage | None = None
        self._study: optuna.Study | None = None
        """The in-memory copy TPE samples from; `_storage` is the database."""
        self._memory: optuna.storages.InMemoryStorage | None = None
        self._stored_count = 0
        """Trials the database held when the searcher opened it: a smaller number is a trial written before."""
        self._queued: set[int] = set()
        """Trials queued (`enqueue`) since the searcher opened the database, which holds them as it holds earlier ones."""
        self._stored_ids: dict[int, int] = {}
        """Optuna trial number -> the trial's id in the database, as it is first needed."""
        self._deadline = deadline
        """`time.time()` at the budget's end; not pickled: a resumed search has a budget of its own."""
        self._fastest_epoch_s: float | None = None
        self._study_writer: StudyWriter | None = None

    @property
    def _writer(self) -> StudyWriter:
        """The queue of database writes, made on first use (a pickled searcher has none)."""
        if self._study_writer is None:
            self._study_writer = StudyWriter()
        return self._study_writer

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
        self._writer.raise_failure()
        if self._orphans:
            return self._adopt(self._orphans.pop(0), trial_id)
        trial = self.study.ask(self._distributions)
        trial.set_user_attr(stored_study.TUNE_TRIAL_ID_ATTR, trial_id)
        started = copy.deepcopy(self._in_memory(trial.number))
        self._writer.put(lambda: self._store_started(started))
        self._trial_numbers[trial_id] = trial.number
        return {**trial.params, TRIAL_NUMBER_KEY: trial.number}

    def _adopt(self, number: int, trial_id: str) -> dict[str, Any]:
        """Give the orphan `number` to the new Tune trial `trial_id`: the same settings, number and name, so its MLflow
        run and folder go on instead of staying RUNNING beside a trial that replaces it."""
        self._memory_storage().set_trial_user_attr(self._memory_id(number), stored_study.TUNE_TRIAL_ID_ATTR, trial_id)
        self._writer.put(lambda: self._open()[0].set_trial_user_attr(
            self._stored_id(number), stored_study.TUNE_TRIAL_ID_ATTR, trial_id))
        self._trial_numbers[trial_id] = number
        return {**self._in_memory(number).params, TRIAL_NUMBER_KEY: number}

    def enqueue(self, params: dict[str, Any]) -> None:
        """Queue `params` as a trial to ask before any proposal, in the database too, so that a search resumed after a
        crash still asks it; nothing when the study already holds a trial with these settings."""
        before = len(self.study.get_trials(deepcopy=False))
        self.study.enqueue_trial(params, skip_if_exists=True)
        trials = self.study.get_trials(deepcopy=False)
        if len(trials) == before:
            return
        waiting = copy.deepcopy(trials[-1])
        self._queued.add(waiting.number)
        self._writer.put(lambda: self._store_new(waiting))

    def no_time_for_an_epoch(self) -> bool:
        """True when the deadline is nearer than the fastest epoch any trial has reported."""
        if self._deadline is None or self._fastest_epoch_s is None:
            return False
        return epoch_plan.replan(self._max_epochs, 0, self._fastest_epoch_s, self._deadline - time.time()) == 0

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id not in self._trial_numbers:
            return  # another searcher's trial (`tuning.optimization.screening`): its epochs are not this study's
        value, step, epoch_s = result.get(self.metric), result.get(TRAINING_ITERATION), result.get(TIME_THIS_ITER_S)
        if isinstance(epoch_s, int | float):
            fastest = self._fastest_epoch_s
            self._fastest_epoch_s = float(epoch_s) if fastest is None else min(float(epoch_s), fastest)
        number = self._trial_numbers[trial_id]
        if isinstance(result.get(PLANNED_EPOCHS_KEY), int | float):
            self._planned_epochs[number] = int(result[PLANNED_EPOCHS_KEY])
        if value is not None and step is not None:
            self._store_intermediate_value(number, int(step), float(value))

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id not in self._trial_numbers:
            return
        if result and not error:  # a result that ends the trial comes here, not to on_trial_result
            self.on_trial_result(trial_id, result)
        self._tell_end(self._trial_numbers[trial_id], error)

    def _store_intermediate_value(self, number: int, step: int, value: float) -> None:
        told = self._in_memory(number)
        if told.state.is_finished() or step in told.intermediate_values:
            return  # an epoch Tune ran again after restoring a crashed driver's older state: its first report stands
        self._memory_storage().set_trial_intermediate_value(self._memory_id(number), step, value)
        self._writer.put(lambda: self._open()[0].set_trial_intermediate_value(self._stored_id(number), step, value))

    def _tell_end(self, number: int, error: bool) -> None:
        trial = self._in_memory(number)
        if trial.state.is_finished():
            return
        values: list[float] | None = None
        if error or not trial.intermediate_values or trial.last_step is None:
            state = TrialState.FAIL
            self.study.tell(number, state=state)
        elif trial.last_step >= self._planned_epochs.get(number, self._max_epochs):
            state, values = TrialState.COMPLETE, [(max if self.mode == "max" else min)(trial.intermediate_values.values())]
            self.study.tell(number, values[0])
        else:  # Optuna's own tell gives a pruned trial its last epoch's value
            state, values = TrialState.PRUNED, [trial.intermediate_values[trial.last_step]]
            self.study.tell(number, state=state)
        self._writer.put(lambda: self._open()[0].set_trial_state_values(self._stored_id(number), state, values))

    def _store_started(self, trial: optuna.trial.FrozenTrial) -> None:
        """Write a trial just asked for, with its Tune trial id, to the database: a queued one (a point to evaluate)
        takes its settings and starts; a new one is added, and must get the number it has in memory."""
        storage, _ = self._open()
        if trial.number < self._stored_count or trial.number in self._queued:
            stored_id = self._stored_id(trial.number)
            # RUNNING already: an earlier attempt of this write started it before the database went away
            started = (storage.set_trial_state_values(stored_id, TrialState.RUNNING)
                       or storage.get_trial(stored_id).state == TrialState.RUNNING)
            for name, value in trial.params.items():
                distribution = trial.distributions[name]
                storage.set_trial_param(stored_id, name, distribution.to_internal_repr(value), distribution)
            storage.set_trial_user_attr(stored_id, stored_study.TUNE_TRIAL_ID_ATTR, trial.user_attrs[stored_study.TUNE_TRIAL_ID_ATTR])
            if not started:
                raise self._changed_elsewhere()
        else:
            self._store_new(trial)

    def _store_new(self, trial: optuna.trial.FrozenTrial) -> None:
        """Add `trial` to the database as it is in memory, where it must get the number it has in memory."""
        if trial.number in self._stored_ids:  # written already, by an earlier attempt of this write
            return
        storage = self._open()[0]
        stored_id = storage.create_new_trial(storage.get_study_id_from_name(self._study_name), template_trial=trial)
        self._stored_ids[trial.number] = stored_id
        if storage.get_trial_number_from_id(stored_id) != trial.number:
            raise self._changed_elsewhere()

    def _changed_elsewhere(self) -> stored_study.StudyError:
        return stored_study.StudyError(f"study {self._study_name}: another process changed its trials while this "
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
        """Tune saves the searcher with the experiment's state: the database holds every write by then, so a search
        resumed from this state finds the trials it names."""
        Path(checkpoint_path).write_text(json.dumps(self.saved_state()))

    def saved_state(self) -> dict[str, Any]:
        """What `save` writes, once the database holds every write."""
        self.flush()
        return {"trial_numbers": self._trial_numbers}

    def flush(self) -> None:
        """Wait until the database holds every write made so far."""
        self._writer.flush()

    def restore(self, checkpoint_path: str) -> None:
        """Take back the trial map; the trials the driver started after its last save (Tune's saved state does not
        know them) are orphans, which the next trials take up."""
        self.restore_state(json.loads(Path(checkpoint_path).read_text()))

    def restore_state(self, state: dict[str, Any]) -> None:
        """Take back what `saved_state` gave, as `restore` does."""
        self._trial_numbers = state["trial_numbers"]
        known = set(self._trial_numbers.values())
        self._orphans = [trial.number for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                         if trial.number not in known]

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles the searcher with the experiment: without its database connection."""
        return {**self.__dict__, "_storage": None, "_study": None, "_memory": None, "_stored_ids": {}, "_queued": set(), "_deadline": None,
                "_study_writer": None}

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
