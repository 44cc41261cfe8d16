"""A trial's plan: `--max-epochs`, fitted to what fits before the time budget ends at the trial's pace, grown back
only as far as the learning rate does not climb."""

from __future__ import annotations

from itertools import pairwise

import pytest

from fmnist.model import cosine_rate
from tuning.optimization.epoch_plan import EpochPace, outruns, replan


def test_without_a_budget_the_plan_stays() -> None:
    assert replan(planned=27, finished=3, seconds_per_epoch=60.0, seconds_left=None, most=27) == 27


def test_the_plan_shrinks_to_the_epochs_that_fit_before_the_budget_ends() -> None:
    assert replan(planned=27, finished=1, seconds_per_epoch=40.0, seconds_left=599.0, most=27) == 1 + 14
    assert replan(planned=27, finished=1, seconds_per_epoch=40.0, seconds_left=10_000.0, most=27) == 27, "never past max epochs"


def test_the_plan_grows_back_when_epochs_speed_up() -> None:
    """A slow first epoch shrank the plan; the epochs after it are faster, and the budget's rest is used."""
    assert replan(planned=20, finished=1, seconds_per_epoch=30.0, seconds_left=3_000.0, most=27) == 27
    assert replan(planned=20, finished=10, seconds_per_epoch=30.0, seconds_left=3_000.0, most=27) == 22, "no further than the rate allows"


def test_a_trial_outruns_its_limit_when_its_epochs_left_would_end_after_it() -> None:
    assert outruns(elapsed_s=50.0, seconds_per_epoch=45.0, epochs_left=1, most_s=90.0)
    assert not outruns(elapsed_s=40.0, seconds_per_epoch=45.0, epochs_left=1, most_s=90.0)
    assert not outruns(elapsed_s=500.0, seconds_per_epoch=45.0, epochs_left=0, most_s=90.0), "a finished plan ends anyway"
    assert not outruns(elapsed_s=500.0, seconds_per_epoch=45.0, epochs_left=3, most_s=None), "no limit"


def test_without_a_ceiling_a_plan_never_grows() -> None:
    assert replan(planned=10, finished=5, seconds_per_epoch=10.0, seconds_left=1_000.0) == 10


@pytest.mark.parametrize("planned", [2, 9, 20, 42])
def test_a_grown_plan_never_raises_the_learning_rate(planned: int) -> None:
    for finished in range(1, planned):
        grown = replan(planned, finished, seconds_per_epoch=1.0, seconds_left=10_000.0, most=1_000)
        assert grown > planned
        assert cosine_rate(0.01, finished, grown) <= cosine_rate(0.01, finished - 1, planned), (planned, finished, grown)


def test_a_plan_that_grows_and_shrinks_keeps_the_rate_falling() -> None:
    """Epochs that speed up, then slow down: the rate of each epoch trained is at most the last one's."""
    planned, rates = 27, []
    for finished, seconds_per_epoch in enumerate([90.0, 40.0, 40.0, 80.0, 120.0, 40.0, 40.0, 40.0], start=1):
        rates.append(cosine_rate(0.01, finished - 1, planned))
        planned = replan(planned, finished, seconds_per_epoch, seconds_left=900.0 - 60.0 * finished, most=27)
        if planned == finished:
            break
    assert len(rates) > 5 and all(later <= earlier for earlier, later in pairwise(rates)), rates


def test_a_trial_with_no_time_left_for_an_epoch_is_done() -> None:
    assert replan(planned=27, finished=4, seconds_per_epoch=60.0, seconds_left=59.0, most=27) == 4
    assert replan(planned=27, finished=4, seconds_per_epoch=60.0, seconds_left=-5.0, most=27) == 4


def test_the_pace_leaves_the_first_epoch_out_once_others_have_ended() -> None:
    clock = iter([0.0, 90.0, 130.0, 175.0]).__next__
    pace = EpochPace(clock)
    assert pace.epoch_ended() == 90.0
    assert pace.epoch_ended() == 40.0
    assert pace.epoch_ended() == 42.5
