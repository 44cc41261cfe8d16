"""The search's settings: built once from the flags, validated, saved, and restored by `--resume`."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path

import pytest

from tuning import cli
from tuning.saved_search import STATE_FILE, SavedSearch, SavedSearchError
from tuning.settings import DEFAULT_TIME_BUDGET_S, SCREENED_MAX_EPOCHS, UNTIL_BUDGET, SearchSettings, SettingsError


def new_settings(*argv: str) -> SearchSettings:
    return cli.parse(list(argv)).new_settings()


def test_flags_override_defaults_and_the_rest_keep_them() -> None:
    settings = new_settings("--num-samples", "7", "--metric", "val_loss", "--name", "s1", "--tracking-uri", "sqlite:///x.db")
    assert settings.num_samples == 7 and settings.metric == "val_loss" and settings.mode == "min"
    assert settings.max_epochs == SearchSettings(name="x").max_epochs
    assert settings.name == "s1" and settings.tracking_uri == f"sqlite:///{Path.cwd() / 'x.db'}"


def test_the_tracking_uri_is_resolved_once_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert new_settings().tracking_uri == "http://127.0.0.1:5999"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert new_settings().tracking_uri == f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def test_smoke_test_is_a_preset_that_explicit_flags_override() -> None:
    smoke = new_settings("--smoke-test")
    assert (smoke.num_samples, smoke.max_epochs, smoke.train_size) == (2, 1, 2000)
    assert new_settings("--smoke-test", "--train-size", "500").train_size == 500


def test_a_short_max_epochs_brings_asha_s_first_rung_with_it_unless_the_rung_is_given() -> None:
    assert (new_settings("--num-samples", "4").max_epochs, new_settings().grace_period) == (27, 3)
    assert new_settings("--max-epochs", "2").grace_period == 2
    assert new_settings("--smoke-test").grace_period == 1
    assert new_settings("--max-epochs", "12").grace_period == 3
    with pytest.raises(SettingsError, match="--grace-period 5 cannot exceed --max-epochs 2"):
        new_settings("--max-epochs", "2", "--grace-period", "5")


def test_a_search_that_screens_trains_what_it_promotes_until_its_budget_ends_unless_max_epochs_is_given() -> None:
    """Screening promotes its best to train on all the images for the rest of the budget, not for 27 epochs of it."""
    assert new_settings().screens and new_settings().max_epochs == SCREENED_MAX_EPOCHS
    assert new_settings("--time-budget-s", "3600").max_epochs == SCREENED_MAX_EPOCHS
    assert new_settings("--time-budget-s", "3600", "--max-epochs", "27").max_epochs == 27
    assert new_settings("--time-budget-s", "3600", "--screen-share", "0").max_epochs == 27, "no screening: trials of 27"
    assert new_settings("--num-samples", "8").max_epochs == 27, "no budget: trials of 27"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--num-samples", "0"], "--num-samples must be at least 1, got 0"),
        (["--max-epochs", "-3"], "--max-epochs must be at least 1, got -3"),
        (["--grace-period", "6", "--max-epochs", "5"], "--grace-period 6 cannot exceed --max-epochs 5"),
        (["--reduction-factor", "1"], "--reduction-factor must be above 1, got 1"),
        (["--max-concurrent-trials", "0"], "--max-concurrent-trials must be at least 1, got 0"),
        (["--cpus-per-trial", "0"], "--cpus-per-trial must be above 0, got 0"),
        (["--gpus-per-trial", "-1"], "--gpus-per-trial must be at least 0, got -1.0"),
        (["--validation-fraction", "1.0"], "--validation-fraction must be between 0 and 1, got 1"),
        (["--train-size", "10"], "--train-size must be at least 100, got 10"),
        (["--screen-share", "1"], "--screen-share must be at least 0 and below 1, got 1"),
        (["--screen-share", "-0.1"], "--screen-share must be at least 0 and below 1, got -0.1"),
        (["--screen-fraction", "0"], "--screen-fraction must be above 0 and at most 1, got 0"),
        (["--screen-epochs", "0"], "--screen-epochs must be at least 1, got 0"),
        (["--screen-trial-share", "0"], "--screen-trial-share must be above 0 and at most 1, got 0"),
        (["--screen-trial-share", "1.5"], "--screen-trial-share must be above 0 and at most 1, got 1.5"),
        (["--time-budget-s", "0"], "--time-budget-s must be above 0, got 0"),
        (["--seed", "-1"], "--seed must be at least 0, got -1"),
        (["--startup-trials", "0"], "--startup-trials must be at least 1, got 0"),
        (["--ensemble-size", "0"], "--ensemble-size must be at least 1, got 0"),
        (["--max-failures", "-2"], "--max-failures must be at least -1, got -2"),
        (["--wait-for-nodes-s", "-5"], "--wait-for-nodes-s must be at least 0, got -5.0"),
        (["--name", "a/b"], "--name must be a plain folder name, got 'a/b'"),
        (["--warm-start", ""], "--warm-start must name an earlier search, got ''"),
        (["--name", "x", "--warm-start", "x"], "--warm-start must name an earlier search, got 'x'"),
    ],
)
def test_out_of_range_flags_are_named(argv: list[str], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        new_settings(*argv)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--num-samples", "ten"], "error: argument --num-samples: invalid int value: 'ten'"),
        (["--metric", "accuracy"], "error: argument --metric: invalid choice: 'accuracy'"),
        (["--no-such-flag"], "error: unrecognized arguments: --no-such-flag"),
        (["--resume"], "error: --resume needs --name"),
        (["--max-concurrent-trials", "many"], "error: argument --max-concurrent-trials: expected an integer or auto, got 'many'"),
        (["--cpus-per-trial", "all"], "error: argument --cpus-per-trial: expected a number or auto, got 'all'"),
    ],
)
def test_malformed_flags_exit_with_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.parse(argv)
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith(message) and error.count("\n") == 1


def test_auto_concurrency_packs_one_trial_per_reserved_cpus() -> None:
    assert new_settings().concurrent_trials(cluster_cpus=2, trial_cpus=1) == 2
    assert new_settings("--max-concurrent-trials", "auto").concurrent_trials(cluster_cpus=6, trial_cpus=2) == 3
    assert new_settings().concurrent_trials(cluster_cpus=2, trial_cpus=4) == 1
    assert new_settings("--max-concurrent-trials", "3").concurrent_trials(cluster_cpus=2, trial_cpus=1) == 3


def test_auto_cpus_give_each_trial_a_whole_node_on_a_time_budget_else_one_cpu() -> None:
    assert new_settings("--num-samples", "10").trial_cpus(smallest_node_cpus=4) == 1
    assert new_settings().trial_cpus(smallest_node_cpus=4) == 4, "the default 20-minute budget: a whole node a trial"
    assert new_settings("--time-budget-s", "3600").trial_cpus(smallest_node_cpus=4) == 4, "an hour too"
    assert new_settings("--time-budget-s", "1200").trial_cpus(smallest_node_cpus=4) == 4
    assert new_settings("--time-budget-s", "1800").trial_cpus(smallest_node_cpus=4) == 4
    assert new_settings("--time-budget-s", "1200", "--cpus-per-trial", "auto").trial_cpus(smallest_node_cpus=2) == 2
    assert new_settings("--time-budget-s", "1200", "--cpus-per-trial", "1.5").trial_cpus(smallest_node_cpus=4) == 1.5


def test_auto_with_gpus_shares_a_gpu_nodes_cpus_and_counts_gpus() -> None:
    half_a_gpu = new_settings("--gpus-per-trial", "0.5", "--time-budget-s", "1200")
    assert half_a_gpu.trial_cpus(smallest_node_cpus=2, cpus_per_gpu_trial=4) == 4, "GPU trials ignore the whole-node rule"
    assert half_a_gpu.concurrent_trials(cluster_cpus=24, trial_cpus=4, cluster_gpus=2) == 4, "the GPUs bound it"
    assert half_a_gpu.concurrent_trials(cluster_cpus=8, trial_cpus=4, cluster_gpus=2) == 2, "the CPUs bound it"
    assert new_settings().concurrent_trials(cluster_cpus=8, trial_cpus=1, cluster_gpus=2) == 8, "CPU trials ignore GPUs"


def test_saved_settings_round_trip(tmp_path: Path) -> None:
    settings = new_settings("--name", "round-trip", "--storage-path", str(tmp_path), "--train-size", "2000", "--seed", "3")
    SavedSearch(settings, "run-123", "digest-abc").save()
    loaded = SavedSearch.load(settings.experiment_path)
    assert loaded == SavedSearch(settings, "run-123", "digest-abc")


def test_resume_restores_every_setting_and_takes_only_where_it_runs(tmp_path: Path) -> None:
    saved = new_settings("--name", "s", "--storage-path", str(tmp_path), "--train-size", "2000", "--max-epochs", "4")
    resumed = saved.resumed_with({"train_size": 2000, "address": "ray-head:6379", "storage_path": "elsewhere"})
    assert resumed == dataclasses.replace(saved, address="ray-head:6379", storage_path="elsewhere")


def test_resume_refuses_a_flag_that_changes_the_search(tmp_path: Path) -> None:
    saved = new_settings("--name", "s", "--train-size", "2000")
    with pytest.raises(SettingsError) as raised:
        saved.resumed_with({"train_size": 5000})
    assert str(raised.value).startswith("--resume: --train-size 5000 conflicts with the saved search's 2000")


def test_resume_of_a_missing_or_broken_record_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SavedSearchError, match=f"{tmp_path}/none/{STATE_FILE} not found"):
        SavedSearch.load(str(tmp_path / "none"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / STATE_FILE).write_text('{"settings": {"name": "b", "colour": "red"}}')
    with pytest.raises(SavedSearchError, match="is not a search record .*'colour'"):
        SavedSearch.load(str(tmp_path / "broken"))


def test_mlflow_params_say_what_is_searched_not_where() -> None:
    params = new_settings("--name", "p", "--address", "ray-head:6379").mlflow_params()
    assert params["search.num_samples"] == "-1" and params["search.name"] == "p"
    assert not {"search.address", "search.tracking_uri", "search.storage_path"} & set(params)


def test_no_flags_search_for_a_bounded_time_and_say_when_they_end() -> None:
    default = new_settings()
    assert (default.time_budget_s, default.num_samples) == (DEFAULT_TIME_BUDGET_S, UNTIL_BUDGET)
    started = datetime(2026, 12, 3, 14, 12, 30).timestamp()
    assert default.plan_line(started) == "searching trials until 14:32 (20 min); --time-budget-s to change"
    counted = new_settings("--num-samples", "10")
    assert counted.time_budget_s is None and counted.num_samples == 10, "--num-samples alone keeps its meaning"
    assert counted.plan_line(started) == ("searching 10 trials of up to 27 epochs, with no time budget; "
                                          "--time-budget-s to set one")
    both = new_settings("--num-samples", "4", "--time-budget-s", "90")
    assert both.plan_line(started) == "searching up to 4 trials until 14:14 (2 min); --time-budget-s to change"
    assert new_settings("--smoke-test").time_budget_s is None


def test_a_time_budget_alone_runs_trials_until_it_ends() -> None:
    assert new_settings("--time-budget-s", "600").num_samples == -1
    assert new_settings("--time-budget-s", "600", "--num-samples", "4").num_samples == 4
    with pytest.raises(SettingsError, match="--num-samples -1 .* needs --time-budget-s"):
        new_settings("--num-samples", "-1")


def test_a_screening_trial_may_train_for_a_share_of_the_screening_stage() -> None:
    assert new_settings("--time-budget-s", "600").screen_trial_seconds == 600 * 0.4 * 0.5
    assert new_settings("--time-budget-s", "600", "--screen-trial-share", "0.25").screen_trial_seconds == 600 * 0.4 * 0.25
    assert new_settings("--num-samples", "4").screen_trial_seconds is None, "no budget, no screening, no limit"


def test_a_search_that_screens_seeds_tpe_over_its_own_study_apart_from_screening_s() -> None:
    """Equal seeds would make TPE's random start-up in the search's own study propose screening's first draws again."""
    own, screen = new_settings("--seed", "3").sampler_seeds
    assert own != screen and screen == 3
    assert new_settings("--seed", "3", "--num-samples", "4").sampler_seeds[0] == 3, "no screening: the search's own seed"


def test_a_time_budgeted_search_screens_first_unless_told_not_to() -> None:
    assert new_settings().screens and new_settings("--time-budget-s", "60").screens
    assert not new_settings("--time-budget-s", "60", "--screen-share", "0").screens
    assert not new_settings("--num-samples", "10").screens, "a search without a time budget has no share to screen in"
