"""The importances bench tells a dimension that moves a study's scores from one that does not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest

from tuning.optimization import stored_study


def _study_where_only_the_learning_rate_matters(trials: int) -> optuna.Study:
    """Real Optuna trials whose value follows the learning rate alone; the dropout is drawn but ignored."""
    noise = np.random.default_rng(0)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(trials):
        trial = study.ask()
        learning_rate = trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
        trial.suggest_float("dropout_1", 0.1, 0.5)
        study.tell(trial, 0.9 - 0.01 * abs(np.log10(learning_rate) + 2.5) + noise.normal(0, 1e-5))
    return study


def test_a_dimension_the_scores_follow_stands_above_noise_and_one_they_ignore_does_not() -> None:
    from parameter_importances import distinct_values, importances, rows, with_decoys

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pooled = with_decoys([_study_where_only_the_learning_rate_matters(40)], decoys=5)
    table = rows(importances(pooled, seeds=3), distinct_values(pooled))
    assert [row["dimension"] for row in table] == ["learning_rate", "dropout_1"]
    assert [row["values_tried"] for row in table] == [40, 40], "each trial drew its own continuous values"
    assert table[0]["low"] > 0.8 and table[0]["above_noise"]
    assert not table[1]["above_noise"]


def test_the_largest_study_of_a_storage_is_read_by_default(tmp_path) -> None:
    from parameter_importances import largest_study

    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    for name, trials in (("search", 2), ("search-screen", 5)):
        study = optuna.create_study(study_name=name, storage=storage)
        for _ in range(trials):
            study.tell(study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}), 0.0)
    assert largest_study(storage) == "search-screen"


def test_studies_scored_on_the_same_terms_pool_and_others_are_refused_naming_the_file() -> None:
    from parameter_importances import common_terms, with_decoys

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    halves = [_study_where_only_the_learning_rate_matters(20), _study_where_only_the_learning_rate_matters(15)]
    terms = {"metric": "val_accuracy", "max_epochs": 2, "train_size": 27000}
    for study in halves:
        study.set_user_attr(stored_study.SCORED_ON_ATTR, terms)
    files = {Path("a.db"): halves[0], Path("b.db"): halves[1]}
    assert common_terms(files) == terms
    assert len(with_decoys(halves, decoys=2).trials) == 35, "every finished trial of both"

    halves[1].set_user_attr(stored_study.SCORED_ON_ATTR, {**terms, "max_epochs": 3})
    with pytest.raises(ValueError, match=r"^b\.db: study .* scored on other terms than a\.db's \(max_epochs\); its scores do not pool$"):
        common_terms(files)
