"""The search's console: a compact table of what a user follows, within 120 columns.

A header with the time spent and left (the budget's end, or without a budget an upper estimate from the epochs
seen), then one row per trial (the running ones first, then the best finished ones): its number in the study,
status, epoch, the selection metric now and at its best epoch, and its time; then the settings that differ
between the trials shown, as `name=value` pairs cut to the width. Tune's own table has a column per searched
setting (over 300 characters for the default space).
"""

from __future__ import annotations

import numbers
import shutil
import sys
import time
from typing import Any

from ray.tune import ProgressReporter
from ray.tune.experiment import Trial

from tuning.optimization.objective import (
    FIDELITY_KEYS,
    PLANNED_EPOCHS_KEY,
    SCREEN_NAME_PREFIX,
    STEP_KEY,
    TRIAL_NUMBER_KEY,
    name_prefix,
)

WIDTH = 120
TRIAL_COLUMN = 9
"""Wide enough for a screening trial's `screen-<number>`; left-aligned, so a table's header starts its line."""
ROWS = 12
REPORT_EVERY_S = 30.0
ACTIVE = (Trial.RUNNING, Trial.PENDING, Trial.PAUSED)


class CompactProgressReporter(ProgressReporter):
    """Prints the table every `REPORT_EVERY_S` seconds, when a trial starts or ends, and once at the end."""

    def __init__(self, metric: str, mode: str, max_epochs: int, width: int | None = None, *,
                 time_budget_s: float | None = None, num_samples: int | None = None) -> None:
        self._metric, self._mode, self._max_epochs = metric, mode, max_epochs
        self._time_budget_s, self._num_samples = time_budget_s, num_samples
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
        shown = self._shown(trials)
        varying = varying_settings([trial.config for trial in shown])
        counts = {status: sum(trial.status == status for trial in trials) for status in dict.fromkeys(t.status for t in trials)}
        best = self._best(trials)
        elapsed = time.monotonic() - self._start
        header = (f"== {_duration(elapsed)}, {self._time_left(trials, elapsed)} | {len(trials)} trials: "
                  + ", ".join(f"{count} {status.lower()}" for status, count in counts.items())
                  + (f" | best {self._metric} {best[1]:.4f} (trial {trial_number(best[0].config)})" if best else ""))
        columns = f"{'trial':<{TRIAL_COLUMN}} {'status':<10} {'epoch':>5} {self._metric[:12]:>12} {'best':>7} {'time':>7}  settings"
        rows = [self._row(trial, varying) for trial in shown]
        left_out = [f"   ... {len(trials) - len(shown)} more trials"] if len(trials) > len(shown) else []
        return [line[: self._width] for line in (header, columns, *rows, *left_out)]

    def _time_left(self, trials: list[Trial], elapsed: float) -> str:
        """Until the budget's end; without one, at most the epochs still possible at the pace seen, over the trials
        running at once (ASHA stops most trials sooner)."""
        if self._time_budget_s is not None:
            return f"{_duration(max(0.0, self._time_budget_s - elapsed))} left"
        epoch_seconds = [result["time_total_s"] / result[STEP_KEY] for trial in trials
                         if (result := trial.last_result or {}).get(STEP_KEY) and "time_total_s" in result]
        if not epoch_seconds or self._num_samples is None:
            return "time left unknown yet"
        active = [trial for trial in trials if trial.status in ACTIVE]
        epochs_left = sum(int((trial.last_result or {}).get(PLANNED_EPOCHS_KEY, self._max_epochs))
                          - int((trial.last_result or {}).get(STEP_KEY, 0)) for trial in active)
        epochs_left += max(0, self._num_samples - len(trials)) * self._max_epochs
        running = max(1, sum(trial.status == Trial.RUNNING for trial in trials))
        return f"at most {_duration(epochs_left * sum(epoch_seconds) / len(epoch_seconds) / running)} left"

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

    def _row(self, trial: Trial, varying: list[str]) -> str:
        result = trial.last_result or {}
        epoch = result.get(STEP_KEY)
        epochs = f"{epoch}/{result.get(PLANNED_EPOCHS_KEY, self._max_epochs)}" if epoch is not None else None
        now, best = result.get(self._metric), self._trial_best(trial)
        return (f"{trial_number(trial.config):<{TRIAL_COLUMN}} {trial.status.lower():<10} {_or_dash(epochs, '{}'):>5} {_or_dash(now, '{:.4f}'):>12} "
                f"{_or_dash(best, '{:.4f}'):>7} {_duration(result.get('time_total_s')):>7}  {settings_text(trial.config, varying)}")


def trial_number(config: dict[str, Any]) -> str:
    """The trial's number in the study, as its config carries it (a table's column may hold it as a float); a
    screening trial's as `screen-<number>`, its name."""
    number = config.get(TRIAL_NUMBER_KEY)
    shown = str(int(number)) if isinstance(number, numbers.Real) and float(number).is_integer() else "?"
    return f"{SCREEN_NAME_PREFIX}{shown}" if name_prefix(config) == SCREEN_NAME_PREFIX else shown


def varying_settings(configs: list[dict[str, Any]]) -> list[str]:
    """The settings whose values differ between these trials' configs, in the order of the first (not the number)."""
    if len(configs) < 2:
        return []
    first = configs[0]
    return [name for name in first if name not in FIDELITY_KEYS and any(config.get(name) != first[name] for config in configs[1:])]


def settings_text(config: dict[str, Any], names: list[str]) -> str:
    """`name=value` pairs of these settings, numbers in 3 significant digits."""
    return " ".join(f"{name}={_short(config.get(name))}" for name in names)


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
