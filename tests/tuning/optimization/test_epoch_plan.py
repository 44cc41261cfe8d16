"""A trial's plan: `--max-epochs`, shortened to what fits before the time budget ends, never lengthened."""

from __future__ import annotations

from tuning.optimization.epoch_plan import replan


def test_without_a_budget_the_plan_stays() -> None:
    assert replan(planned=27, finished=3, seconds_per_epoch=60.0, seconds_left=None) == 27


def test_the_plan_shrinks_to_the_epochs_that_fit_before_the_budget_ends() -> None:
    assert replan(planned=27, finished=1, seconds_per_epoch=40.0, seconds_left=599.0) == 1 + 14
    assert replan(planned=27, finished=1, seconds_per_epoch=40.0, seconds_left=10_000.0) == 27, "never past max epochs"


def test_a_plan_never_grows_back() -> None:
    """When epochs speed up (the other trial ended), the learning rate must not climb again."""
    assert replan(planned=10, finished=5, seconds_per_epoch=10.0, seconds_left=1_000.0) == 10


def test_a_trial_with_no_time_left_for_an_epoch_is_done() -> None:
    assert replan(planned=27, finished=4, seconds_per_epoch=60.0, seconds_left=59.0) == 4
    assert replan(planned=27, finished=4, seconds_per_epoch=60.0, seconds_left=-5.0) == 4
