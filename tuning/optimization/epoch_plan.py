"""How many epochs a trial plans: `--max-epochs`, or fewer when the search's time budget ends sooner.

A trial's cosine learning-rate schedule decays over its plan and the trial ends with it, so that a trial cut
short by the time budget has finished its schedule instead of stopping at a high learning rate. The plan follows the
trial's pace after every epoch: it shrinks when epochs slow down, and grows back when they speed up (the first epoch,
which also builds the graph, is slower than the rest) as far as the next epoch's rate stays at or below the last one's.

Example:
    >>> replan(planned=27, finished=2, seconds_per_epoch=60.0, seconds_left=300.0)  # 5 more epochs fit
    7
"""

from __future__ import annotations

import time
from collections.abc import Callable


def replan(planned: int, finished: int, seconds_per_epoch: float, seconds_left: float | None, most: int | None = None) -> int:
    """The plan after `finished` epochs of about `seconds_per_epoch` each, with `seconds_left` of the budget.

    The epochs that still fit, never more than `most` (default `planned`) nor than the plan whose cosine rate for the
    next epoch climbs above the last epoch's (`fmnist.model.cosine_rate` reads each epoch at its middle), never fewer
    than `finished`: a plan equal to `finished` means the trial is done. `seconds_left` None: no budget, no change.
    """
    if seconds_left is None:
        return planned
    fitting = finished + int(max(seconds_left, 0.0) // seconds_per_epoch)
    ceiling = planned
    if most is not None and finished > 0:  # the next epoch's place on the cosine, (finished + 0.5) / plan, not before the last's
        ceiling = min(most, planned * (2 * finished + 1) // (2 * finished - 1))
    elif most is not None:
        ceiling = most
    return max(finished, min(ceiling, fitting))


def outruns(elapsed_s: float, seconds_per_epoch: float, epochs_left: int, most_s: float | None) -> bool:
    """True when `epochs_left` more epochs at `seconds_per_epoch`, after `elapsed_s`, would end past `most_s` seconds
    (None: no limit): a screening trial so slow stops instead (`tuning.optimization.screening`)."""
    return most_s is not None and epochs_left > 0 and elapsed_s + seconds_per_epoch * epochs_left > most_s


class EpochPace:
    """Seconds an epoch takes since training (re)started, the first epoch left out once there are others: it also
    traces the graph, so counting it would shrink a plan for good."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._started = clock()
        self._first_ended: float | None = None
        self._epochs = 0

    def epoch_ended(self) -> float:
        """Record an epoch's end; the seconds an epoch takes, as far as the epochs so far tell."""
        now = self._clock()
        self._epochs += 1
        if self._first_ended is None:
            self._first_ended = now
            return now - self._started
        return (now - self._first_ended) / (self._epochs - 1)
