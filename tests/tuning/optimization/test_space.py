"""The search-space file: the default is valid, every mistake is named before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from tuning.optimization.space import (
    DEFAULT_SPACE_FILE,
    PACKAGED_SPACES,
    SearchSpaceError,
    load_space,
    space_file,
    write_with_points,
)


def test_default_space_covers_the_model_and_contains_the_baseline() -> None:
    space = load_space(DEFAULT_SPACE_FILE)
    assert {"filters_1", "filters_2", "filters_3", "dropout_1", "learning_rate", "dense_units", "batch_size",
            "optimizer"} <= set(space.distributions)
    distributions = space.optuna_distributions()
    assert isinstance(distributions["learning_rate"], FloatDistribution)
    assert isinstance(distributions["filters_1"], CategoricalDistribution)
    assert distributions["dense_units"] == IntDistribution(64, 512, step=64)
    assert space.fixed["mixed_precision"] == "auto"
    baseline = space.baseline()
    assert baseline["filters_1"] == 32 and baseline["learning_rate"] == 0.001 and baseline["optimizer"] == "adam"
    assert set(baseline) == set(space.distributions)


def test_default_search_starts_from_a_measured_good_point_then_the_original() -> None:
    measured, original = load_space(DEFAULT_SPACE_FILE).first_trials()
    assert original == load_space(DEFAULT_SPACE_FILE).baseline()
    assert measured["lr_schedule"] == "cosine" and (measured["layout"], original["layout"]) == ("full_resolution", "original")
    assert {name for name in original if original[name] != measured[name]} >= {"optimizer", "learning_rate", "label_smoothing"}


def test_the_original_space_is_the_default_one_in_the_original_layout_alone() -> None:
    default, original = load_space(DEFAULT_SPACE_FILE), load_space(space_file("original"))
    assert original.fixed["layout"] == "original" and "layout" not in original.distributions
    assert original.distributions == {name: spec for name, spec in default.distributions.items() if name != "layout"}
    first, second = original.first_trials()
    assert first == original.baseline(), "the original CNN first"
    assert second["lr_schedule"] == "cosine" and second["filters_1"] == 64


def test_config_takes_a_packaged_spaces_name_unless_a_file_of_that_name_exists(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    assert space_file("default") == str(DEFAULT_SPACE_FILE)
    assert space_file("original") == str(PACKAGED_SPACES["original"])
    assert space_file("mine.yaml") == "mine.yaml"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "original").write_text("search_space: {}\n")
    assert space_file("original") == "original"


def test_learning_rate_is_searched_on_a_log_scale() -> None:
    distribution = load_space(DEFAULT_SPACE_FILE).optuna_distributions()["learning_rate"]
    assert distribution.log and (distribution.low, distribution.high) == (1e-4, 1e-2)


def test_points_to_evaluate_are_changes_to_the_original_layout_in_order(tmp_path: Path) -> None:
    space = load_space(_write(tmp_path, _SPACE + "points_to_evaluate:\n  - {optimizer: sgd}\n  - {}\n  - {dropout_1: 0.4, optimizer: sgd}\n"))
    assert space.first_trials() == [
        {"dropout_1": 0.25, "optimizer": "sgd"}, {"dropout_1": 0.25, "optimizer": "adam"}, {"dropout_1": 0.4, "optimizer": "sgd"},
    ]
    assert load_space(_write(tmp_path, _SPACE)).first_trials() == [{"dropout_1": 0.25, "optimizer": "adam"}]
    assert load_space(_write(tmp_path, _SPACE + "points_to_evaluate: []\n")).first_trials() == [], "a cold search"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


_SPACE = "search_space:\n  dropout_1: {type: uniform, low: 0.1, high: 0.5}\n  optimizer: {type: choice, choices: [adam, sgd]}\n  batch_size: 128\n"
BAD_SPACES = {
    "unknown setting": ("search_space:\n  filterz: {type: choice, choices: [1]}\n", r"search_space.filterz: unknown setting"),
    "unknown type": ("search_space:\n  dropout_1: {type: normal, low: 0.1, high: 0.5}\n", r"search_space.dropout_1: type must be one of"),
    "missing bound": ("search_space:\n  dropout_1: {type: uniform, low: 0.1}\n", r"search_space.dropout_1: uniform needs 'high'"),
    "inverted bounds": ("search_space:\n  dropout_1: {type: uniform, low: 0.5, high: 0.1}\n", r"low \(0.5\) must be below high \(0.1\)"),
    "log of zero": ("search_space:\n  learning_rate: {type: loguniform, low: 0, high: 0.1}\n", r"loguniform needs low > 0"),
    "dropout of one": ("search_space:\n  dropout_2: {type: uniform, low: 0.1, high: 1.0}\n", r"search_space.dropout_2: dropout_2 must be in \[0, 1\)"),
    "unknown optimizer": ("search_space:\n  optimizer: {type: choice, choices: [adam, adagrad]}\n", r"optimizer must be one of adam, adamw, sgd, rmsprop, got 'adagrad'"),
    "empty choices": ("search_space:\n  batch_size: {type: choice, choices: []}\n", r"search_space.batch_size: choices must be a non-empty list"),
    "wrong value type": ("search_space:\n  filters_1: {type: choice, choices: [32, many]}\n", r"search_space.filters_1: 'many' is not a int"),
    "baseline outside": ("search_space:\n  filters_1: {type: choice, choices: [16, 64]}\n", r"must include the original value 32"),
    "step off the baseline": ("search_space:\n  dense_units: {type: randint, low: 100, high: 500, step: 100}\n", r"must include the original value 128"),
    "extra key": ("search_space:\n  dropout_1: {type: uniform, low: 0.1, high: 0.5, step: 2}\n", r"unknown key 'step' for uniform"),
    "no search_space": ("space:\n  dropout_1: 0.3\n", r"expected the top-level key 'search_space' and optionally 'points_to_evaluate'"),
    "points not a list": (_SPACE + "points_to_evaluate: {dropout_1: 0.3}\n", r"points_to_evaluate must be a list"),
    "point not a mapping": (_SPACE + "points_to_evaluate:\n  - 0.3\n", r"points_to_evaluate\[0\]: must be a mapping"),
    "point of a fixed setting": (_SPACE + "points_to_evaluate:\n  - {}\n  - {batch_size: 64}\n", r"points_to_evaluate\[1\].batch_size: not a searched setting"),
    "point outside its range": (_SPACE + "points_to_evaluate:\n  - {dropout_1: 0.9}\n", r"points_to_evaluate\[0\].dropout_1: 0.9 lies outside search_space.dropout_1"),
    "point of the wrong type": (_SPACE + "points_to_evaluate:\n  - {optimizer: 3}\n", r"points_to_evaluate\[0\].optimizer: 3 lies outside"),
    "only fixed values": ("search_space:\n  dropout_1: 0.3\n", r"nothing to search"),
    "broken YAML": ("search_space:\n  dropout_1: {type: uniform, low: 0.1\n", r"line \d+: not valid YAML"),
}


@pytest.mark.parametrize("case", list(BAD_SPACES))
def test_bad_space_is_refused_with_file_and_setting(tmp_path: Path, case: str) -> None:
    text, pattern = BAD_SPACES[case]
    path = _write(tmp_path, text)
    with pytest.raises(SearchSpaceError, match=pattern) as raised:
        load_space(path)
    assert str(raised.value).startswith(f"{path}: ") and "\n" not in str(raised.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SearchSpaceError, match=r"nope.yaml: file not found"):
        load_space(tmp_path / "nope.yaml")


def test_a_copy_of_the_default_space_can_start_from_the_original_alone(tmp_path: Path) -> None:
    default = load_space(DEFAULT_SPACE_FILE)
    copy = load_space(write_with_points(tmp_path / "original_first.yaml", [{}]))
    assert copy.first_trials() == [default.baseline()]
    assert (copy.distributions, copy.fixed) == (default.distributions, default.fixed)
