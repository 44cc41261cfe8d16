"""The search's console: a compact table of what a user follows, within 120 columns.

One row per trial (the running ones first, then the best finished ones): its number, status, epoch,
the selection metric now and at its best epoch, and its time; then the settings that differ between
the trials shown, as `name=value` pairs cut to the width. Tune's own table has a column per searched
setting (over 300 characters for the default space).
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import Any

from ray.tune import ProgressReporter
from ray.tune.experiment import Trial

from tuning.optimization.objective import PLANNED_EPOCHS_KEY, STEP_KEY

WIDTH = 120
ROWS = 12
REPORT_EVERY_S = 30.0
ACTIVE = (Trial.RUNNING, Trial.PENDING, Trial.PAUSED)


class CompactProgressReporter(ProgressReporter):
    """Prints the table every `REPORT_EVERY_S` seconds, when a trial starts or ends, and once at the end."""

    def __init__(self, metric: str, mode: str, max_epochs: int, width: int | None = None) -> None:
        self._metric, self._mode, self._max_epochs = metric, mode, max_epochs
        self._width = width or min(WIDTH, shutil.get_terminal_size((WIDTH, 24)).columns)
        self._start = time.monotonic()
        self._last_report = float("-inf")
        self._last_statuses: tuple[str, ...] = ()
        self._last_lines: list[str] = []

    def setup(self, start_time: float | None = None, total_samples: int | None = None, metric: str | None = None,
              mode: str | None = None, **kwargs: Any) -> None:
        self._start = time.monotonic()

    def should_report(self, trials: list[Trial], done: bool = False) -> bool:
        statuses = tuple(trial.status for trial in trials)
        due = done or statuses != self._last_statuses or time.monotonic() - self._last_report >= REPORT_EVERY_S
        self._last_statuses = statuses
        return due

    def report(self, trials: list[Trial], done: bool, *sys_info: str) -> None:
        self._last_report = time.monotonic()
        lines = self.lines(trials)
        if lines[1:] != self._last_lines[1:]:  # the same table under a later clock says nothing new
            print("\n".join(lines), file=sys.stdout, flush=True)
        self._last_lines = lines

    def lines(self, trials: list[Trial]) -> list[str]:
        """The header, the table and a note of rows left out, each at most the width."""
        numbers = {trial.trial_id: number for number, trial in enumerate(trials, start=1)}
        shown = self._shown(trials)
        varying = _varying_settings(shown)
        counts = {status: sum(trial.status == status for trial in trials) for status in dict.fromkeys(t.status for t in trials)}
        best = self._best(trials)
        header = (f"== {_duration(time.monotonic() - self._start)} | {len(trials)} trials: "
                  + ", ".join(f"{count} {status.lower()}" for status, count in counts.items())
                  + (f" | best {self._metric} {best[1]:.4f} (trial {numbers[best[0].trial_id]})" if best else ""))
        columns = f"{'trial':>5} {'status':<10} {'epoch':>5} {self._metric[:12]:>12} {'best':>7} {'time':>7}  settings"
        rows = [self._row(numbers[trial.trial_id], trial, varying) for trial in shown]
        left_out = [f"   ... {len(trials) - len(shown)} more trials"] if len(trials) > len(shown) else []
        return [line[: self._width] for line in (header, columns, *rows, *left_out)]

    def _shown(self, trials: list[Trial]) -> list[Trial]:
        active = [trial for trial in trials if trial.status in ACTIVE]
        finished = sorted((trial for trial in trials if trial.status not in ACTIVE), key=self._sort_key)
        return (active + finished)[:ROWS]

    def _sort_key(self, trial: Trial) -> float:
        value = self._trial_best(trial)
        if value is None:
            return float("inf")
        return -value if self._mode == "max" else value

    def _trial_best(self, trial: Trial) -> float | None:
        analysis = trial.metric_analysis.get(self._metric)
        return None if not analysis else analysis[self._mode]

    def _best(self, trials: list[Trial]) -> tuple[Trial, float] | None:
        scored = [(trial, value) for trial in trials if (value := self._trial_best(trial)) is not None]
        if not scored:
            return None
        pick = max if self._mode == "max" else min
        return pick(scored, key=lambda pair: pair[1])

    def _row(self, number: int, trial: Trial, varying: list[str]) -> str:
        result = trial.last_result or {}
        epoch = result.get(STEP_KEY)
        epochs = f"{epoch}/{result.get(PLANNED_EPOCHS_KEY, self._max_epochs)}" if epoch is not None else None
        now, best = result.get(self._metric), self._trial_best(trial)
        settings = " ".join(f"{name}={_short(trial.config.get(name))}" for name in varying)
        return (f"{number:>5} {trial.status.lower():<10} {_or_dash(epochs, '{}'):>5} {_or_dash(now, '{:.4f}'):>12} "
                f"{_or_dash(best, '{:.4f}'):>7} {_duration(result.get('time_total_s')):>7}  {settings}")


def _varying_settings(trials: list[Trial]) -> list[str]:
    """The settings whose values differ between `trials`, in the order of the first trial's config."""
    if len(trials) < 2:
        return []
    first = trials[0].config
    return [name for name in first if any(trial.config.get(name) != first[name] for trial in trials[1:])]


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _or_dash(value: Any, template: str) -> str:
    return "-" if value is None else template.format(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"
