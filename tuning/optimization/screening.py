"""Screening: a time-budgeted search first explores cheaply, then trains the best it found on all the images.

For the first share of the budget, each trial trains a configuration proposed by TPE over the search's screening study
(`<name>-screen`) on a class-balanced share of the training images, for a short schedule run to its end (a cosine rate
decays to its floor): a fidelity whose ranking follows the full data's (docs/benchmarks.md, "Fidelity"). Then the
screening study's best configurations, as many as trials run at once, are queued first in the search's own study and
train on all the images until the budget ends; TPE proposes any later trial from that study. Each study holds values
scored on one set of terms, so TPE never compares a screening score with a full one; both score on the same validation
images, so the champion's choice may take any trial.

A screening trial may train for at most a share of the screening stage (`--screen-trial-share`): one whose pace says
its schedule would end later stops after the epoch that says so, and its study is told PRUNED, so one slow draw cannot
take the stage's time from the configurations after it, TPE learns that it cost too much, and it is never promoted.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optuna.trial import TrialState
from ray.tune.search import Searcher

from tuning.optimization.objective import SCREEN_EPOCHS_KEY, SCREEN_IMAGES_KEY, SCREEN_SECONDS_KEY
from tuning.optimization.study_searcher import StoredStudySearcher


@dataclass(frozen=True)
class Fidelity:
    """What a screening trial trains: `train_images` of the training split, for a complete `epochs`-epoch schedule,
    in at most `most_seconds` (None: no limit)."""

    train_images: int
    epochs: int
    most_seconds: float | None = None

    def config(self) -> dict[str, float]:
        """The keys a screening trial's config carries, which `train_cnn` reads."""
        limit = {} if self.most_seconds is None else {SCREEN_SECONDS_KEY: self.most_seconds}
        return {SCREEN_IMAGES_KEY: self.train_images, SCREEN_EPOCHS_KEY: self.epochs, **limit}


class ScreeningSearcher(Searcher):
    """Proposes screening trials from `screen` while another is expected to end by `screen_until` (`time.time()`), then
    the `promoted` best of them, then whatever `full` proposes; every result goes to the searcher whose trial it is."""

    def __init__(
        self, screen: StoredStudySearcher, full: StoredStudySearcher, fidelity: Fidelity, *, screen_until: float | None,
        promoted: int,
    ) -> None:
        super().__init__(metric=full.metric, mode=full.mode)
        self._screen, self._full, self._fidelity = screen, full, fidelity
        self._screen_until = screen_until
        """Not pickled: a resumed search has a budget of its own, and promotes at once if it was still screening."""
        self._promoted = promoted
        self._screening = True
        self._screen_started: dict[str, float] = {}
        """Each running screening trial's start (`time.time()`)."""
        self._screen_seconds: list[float] = []
        """The wall-clock seconds of each screening trial that ended, start-up included."""

    @property
    def screening(self) -> bool:
        """True until the screening stage has promoted its best."""
        return self._screening

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        """The space, metric and mode are this searcher's own; Tune's `param_space` only adds fixed values."""
        return False

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self._screening and self._another_screening_trial_fits():
            suggestion = self._screen.suggest(trial_id)
            if isinstance(suggestion, dict):
                self._screen_started[trial_id] = time.time()
                return {**suggestion, **self._fidelity.config()}
        if self._screening:
            self._promote()
        return self._full.suggest(trial_id)

    def _another_screening_trial_fits(self) -> bool:
        """True while a screening trial started now, as long as the mean of those that ended, ends within the share."""
        if self._screen_until is None:
            return False
        expected_s = statistics.fmean(self._screen_seconds) if self._screen_seconds else 0.0
        return time.time() + expected_s < self._screen_until

    def _promote(self) -> None:
        """Queue the screening study's best finished configurations first in the full study, best first, in its
        database too: a search resumed after a crash asks them still, and one that promotes again adds none twice."""
        screened = self._screen.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        screened.sort(key=lambda trial: float(trial.value), reverse=self.mode == "max")  # COMPLETE: each has a value
        for trial in screened[:self._promoted]:
            self._full.enqueue(trial.params)
        self._screening = False

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self._screen.on_trial_result(trial_id, result)
        self._full.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        started = self._screen_started.pop(trial_id, None)
        if started is not None and not error:
            self._screen_seconds.append(time.time() - started)
        self._screen.on_trial_complete(trial_id, result, error)
        self._full.on_trial_complete(trial_id, result, error)

    def save(self, checkpoint_path: str) -> None:
        """Both studies' trial maps and the stage, once the databases hold every write."""
        state = {"screening": self._screening, "screen": self._screen.saved_state(), "full": self._full.saved_state()}
        Path(checkpoint_path).write_text(json.dumps(state))

    def restore(self, checkpoint_path: str) -> None:
        state = json.loads(Path(checkpoint_path).read_text())
        self._screening = bool(state["screening"])
        self._screen.restore_state(state["screen"])
        self._full.restore_state(state["full"])

    def flush(self) -> None:
        """Wait until both databases hold every write made so far."""
        self._screen.flush()
        self._full.flush()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_screen_until": None}
