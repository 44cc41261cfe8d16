"""Which registered version is the champion: chosen on validation, by more than the standard error of a difference."""

from __future__ import annotations

import pytest

from tuning.champion.registry import ValidationScore, champion_version


def _score(value: float, standard_error: float = 0.003, metric: str = "val_accuracy", images: str = "a") -> ValidationScore:
    return ValidationScore(metric, value, standard_error, images)


def test_a_later_version_takes_the_alias_only_beyond_the_margin() -> None:
    margin = _score(0.90).margin(_score(0.90))  # sqrt(2) x 0.003
    assert margin == pytest.approx(0.004243, abs=1e-6)
    assert champion_version([(1, _score(0.900)), (2, _score(0.904))]) == "1", "a gain within the margin is noise"
    assert champion_version([(1, _score(0.900)), (2, _score(0.905))]) == "2"


def test_small_gains_do_not_add_up_to_a_move() -> None:
    """Each version is compared with the champion of its time, not with the one before it."""
    assert champion_version([(1, _score(0.900)), (2, _score(0.903)), (3, _score(0.906)), (4, _score(0.9041))]) == "3"


def test_a_loss_is_better_lower() -> None:
    assert champion_version([(1, _score(0.30, metric="val_loss")), (2, _score(0.25, metric="val_loss"))]) == "2"
    assert champion_version([(1, _score(0.25, metric="val_loss")), (2, _score(0.30, metric="val_loss"))]) == "1"


def test_a_score_on_other_images_or_by_another_metric_starts_afresh() -> None:
    assert champion_version([(1, _score(0.95)), (2, _score(0.80, images="b"))]) == "2"
    assert champion_version([(1, _score(0.95)), (2, _score(0.20, metric="val_loss"))]) == "2"


def test_the_order_of_registration_decides_not_the_order_listed() -> None:
    assert champion_version([(3, _score(0.90)), (1, _score(0.80)), (2, _score(0.95))]) == "2"


def test_the_tags_round_trip_and_a_version_without_them_has_no_score() -> None:
    score = _score(0.91234567, standard_error=0.0031)
    assert ValidationScore.from_tags({**score.tags(), "test_accuracy": "0.9"}) == _score(0.912346, 0.0031)
    assert ValidationScore.from_tags({"test_accuracy": "0.99"}) is None
