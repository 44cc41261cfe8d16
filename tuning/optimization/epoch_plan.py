"""How many epochs a trial plans: `--max-epochs`, or fewer when the search's time budget ends sooner.

A trial's cosine learning-rate schedule decays over its plan and the trial ends with it, so that a trial cut
short by the time budget has finished its schedule instead of stopping at a high learning rate.

Example:
    >>> replan(planned=27, finished=2, seconds_per_epoch=60.0, seconds_left=300.0)  # 5 more epochs fit
    7
"""

from __future__ import annotations


def replan(planned: int, finished: int, seconds_per_epoch: float, seconds_left: float | None) -> int:
    """The plan after `finished` epochs of about `seconds_per_epoch` each, with `seconds_left` of the budget.

    The epochs that still fit, never more than `planned` (a learning rate never climbs back), never fewer than
    `finished`: a plan equal to `finished` means the trial is done. `seconds_left` None: no budget, no change.
    """
    if seconds_left is None:
        return planned
    fitting = finished + int(max(seconds_left, 0.0) // seconds_per_epoch)
    return max(finished, min(planned, fitting))
