"""The trainable in a real Tune run: a time budget fits a trial's plan, and the trial ends with its schedule."""

from __future__ import annotations

import time
from itertools import pairwise
from pathlib import Path

import pandas as pd
import pytest
import ray
from ray import tune

from fmnist.data import stratified_split, stratified_subset
from fmnist.model import cosine_rate
from tuning.optimization.objective import PLANNED_EPOCHS_KEY, SCREEN_EPOCHS_KEY, SCREEN_IMAGES_KEY, SCREEN_SECONDS_KEY
from tuning.optimization.trainable import train_cnn

MAX_EPOCHS = 500
"""Far more than fit before the deadline: the plan must come from the deadline, not from max_epochs."""


def _one_trial(dataset, tmp_path: Path, param_space: dict, deadline: float | None = None) -> tuple[pd.DataFrame, int]:
    """Run `train_cnn` once in Tune on 480 real training images (120 validate); its epochs' results and its validation
    images."""
    train, validation = stratified_split(stratified_subset(dataset.train, 600), validation_fraction=0.2)
    ray.init(address="local", num_cpus=1, include_dashboard=False, configure_logging=False, log_to_driver=False)
    try:
        tuner = tune.Tuner(
            tune.with_parameters(train_cnn, train=train, validation=validation, max_epochs=MAX_EPOCHS, deadline=deadline),
            param_space=param_space, run_config=tune.RunConfig(storage_path=str(tmp_path), name="trial", verbose=0),
        )
        result = tuner.fit()[0]
    finally:
        ray.shutdown()
    assert result.error is None
    return result.metrics_dataframe, len(validation)


@pytest.mark.slow
def test_a_trial_plans_the_epochs_that_fit_before_the_deadline_and_ends_with_them(dataset, tmp_path: Path) -> None:
    deadline = time.time() + 45
    history, _ = _one_trial(dataset, tmp_path, {"lr_schedule": "cosine", "batch_size": 64}, deadline)
    plans = history[PLANNED_EPOCHS_KEY].tolist()
    trained_under = [MAX_EPOCHS, *plans[:-1]]  # each epoch's plan: the one the epoch before it left
    rates = [cosine_rate(1.0, epoch, plan) for epoch, plan in enumerate(trained_under)]
    assert max(plans) < MAX_EPOCHS and all(later <= earlier for earlier, later in pairwise(rates)), (
        f"the plan comes from the deadline and the learning rate never climbs: plans {plans}")
    assert 2 <= len(history) == plans[-1] < MAX_EPOCHS, f"the trial ends with its plan: {len(history)} epochs, plans {plans}"
    assert history["timestamp"].iloc[-1] <= deadline + 1, "the last epoch ended after the deadline"


@pytest.mark.slow
def test_a_screening_trial_trains_its_share_of_the_images_for_its_own_short_schedule(dataset, tmp_path: Path) -> None:
    history, validation_images = _one_trial(dataset, tmp_path, {"batch_size": 64, SCREEN_IMAGES_KEY: 160, SCREEN_EPOCHS_KEY: 2,
                                                                SCREEN_SECONDS_KEY: 600.0})
    assert history["train_images"].tolist() == [160, 160], "a class-balanced 160 of the 480 training images, twice"
    assert history[PLANNED_EPOCHS_KEY].tolist() == [2, 2] and validation_images == 120


@pytest.mark.slow
def test_a_screening_trial_whose_pace_outruns_its_time_limit_stops_before_its_plan_ends(dataset, tmp_path: Path) -> None:
    history, _ = _one_trial(dataset, tmp_path, {"batch_size": 64, SCREEN_IMAGES_KEY: 160, SCREEN_EPOCHS_KEY: 3,
                                                SCREEN_SECONDS_KEY: 0.5})
    assert len(history) == 1 and history[PLANNED_EPOCHS_KEY].tolist() == [3], "one epoch of its 3 said the rest ends too late"
