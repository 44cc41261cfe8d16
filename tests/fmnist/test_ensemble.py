"""Trained CNNs averaged into one Keras model: its answers, its saved file, and the running means."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from fmnist.data import stratified_subset
from fmnist.ensemble import average
from fmnist.model import ModelConfig, build, one_hot


@pytest.fixture(scope="module")
def two_trained_models(dataset) -> list[keras.Model]:
    """Two different layouts, each trained one epoch on 1,000 real images."""
    train = stratified_subset(dataset.train, 1000)
    models = []
    for config in (ModelConfig(batch_size=100), ModelConfig(filters_1=48, dense_units=128, batch_size=100)):
        model = build(config)
        model.fit(train.images, one_hot(train.labels), batch_size=100, epochs=1, verbose=0)
        models.append(model)
    return models


@pytest.mark.slow
def test_the_average_answers_the_mean_of_its_members_and_saves_as_plain_keras(
    two_trained_models: list[keras.Model], dataset, tmp_path: Path
) -> None:
    images = dataset.test.images[:64]
    answers = [model.predict(images, verbose=0) for model in two_trained_models]
    assert not np.allclose(answers[0], answers[1], atol=1e-3), "the members must differ for the test to mean anything"
    averaged = average(two_trained_models)
    np.testing.assert_allclose(averaged.predict(images, verbose=0), (answers[0] + answers[1]) / 2, atol=1e-6)
    averaged.save(tmp_path / "average.keras")
    reloaded = keras.models.load_model(tmp_path / "average.keras")
    np.testing.assert_allclose(reloaded.predict(images, verbose=0), (answers[0] + answers[1]) / 2, atol=1e-6)


@pytest.mark.slow
def test_one_model_is_its_own_average_and_none_is_refused(two_trained_models: list[keras.Model]) -> None:
    assert average(two_trained_models[:1]) is two_trained_models[0]
    with pytest.raises(ValueError, match="at least one model"):
        average([])

