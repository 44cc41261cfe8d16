"""The search-quality comparison is fair: both arms, several seeds, and peers that draw their own configurations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna

from tuning.optimization.objective import SCREEN_EPOCHS_KEY, SCREEN_IMAGES_KEY, TRIAL_NUMBER_KEY
from tuning.optimization.space import load_space
from tuning.optimization.trainable import MODEL_FILE


def _first_proposals(study: optuna.Study, count: int) -> list[dict[str, object]]:
    distributions = load_space().optuna_distributions()
    proposals = []
    for _ in range(count):
        trial = study.ask(distributions)
        proposals.append(trial.params)
        study.tell(trial, 0.5)
    return proposals


def test_tpe_and_random_search_draw_other_configurations_from_the_same_seed() -> None:
    from peer_searchers import peer_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tpe, random = (_first_proposals(peer_study(peer, seed=0, start_points=[]), 3) for peer in ("optuna", "random"))
    assert tpe != random, "TPE's random start-up repeats random search's draws"
    assert _first_proposals(peer_study("optuna", seed=0, start_points=[]), 3) == tpe, "one seed, one stream"
    assert _first_proposals(peer_study("optuna", seed=1, start_points=[]), 3) != tpe


def test_the_same_start_arm_gives_every_optuna_peer_the_spaces_points_first() -> None:
    from peer_searchers import peer_study

    points = load_space().first_trials()
    for peer in ("optuna", "random"):
        assert _first_proposals(peer_study(peer, seed=0, start_points=points), len(points)) == points, peer


def test_each_seed_runs_both_arms_then_the_plain_keras_controls_once() -> None:
    from compare_searchers import planned_runs

    runs = planned_runs(["fmnist-tune", "optuna", "original"], ["cold", "same-start"], [0, 1])
    assert [run.label for run in runs] == [
        "fmnist-tune cold s0", "optuna cold s0", "fmnist-tune same-start s0", "optuna same-start s0", "original control s0",
        "fmnist-tune cold s1", "optuna cold s1", "fmnist-tune same-start s1", "optuna same-start s1", "original control s1",
    ]


def _first_result(config: dict[str, Any], timestamp: float) -> dict[str, Any]:
    """The fields of a trial's first line in Tune's `result.json` that the comparison reads."""
    return {"timestamp": timestamp, "val_accuracy": 0.9, "config": config}


def test_the_results_name_the_screening_trial_whose_configuration_trained_first_on_all_the_images() -> None:
    from compare_searchers import promoted_screening_trial

    first_point, original = load_space().first_trials()
    fidelity = {SCREEN_IMAGES_KEY: 27000, SCREEN_EPOCHS_KEY: 2}
    first_results = {f"screen-{number}": _first_result({**config, **fidelity, TRIAL_NUMBER_KEY: number}, 100.0 + number)
                     for number, config in enumerate([first_point, original] * 6)}  # screen-10 sorts before screen-2 by name
    assert promoted_screening_trial(first_results) is None, "no full-data trial yet"
    first_results["trial-1"] = _first_result({**first_point, TRIAL_NUMBER_KEY: 1}, 300.0)
    first_results["trial-0"] = _first_result({**original, TRIAL_NUMBER_KEY: 0}, 200.0)
    assert promoted_screening_trial(first_results) == "screen-1"


def test_a_run_says_when_its_last_epoch_ended() -> None:
    """A control whose plan ended early shows it: its last epoch's end, not the budget's."""
    from compare_searchers import Curve

    curve = Curve(launched=0.0, epochs=[(90.0, 0.88, "0"), (2_880.0, 0.948, "0")], test_accuracy=0.948, steal=0.0)
    assert curve.last_epoch_minutes == 48.0
    assert Curve(launched=0.0, epochs=[], test_accuracy=None, steal=None).last_epoch_minutes is None


def test_the_final_model_step_chooses_among_each_searchs_leading_trials_at_their_best_epochs(tmp_path: Path) -> None:
    """The same candidates as the search's champion: the best trials by validation, each at its best kept epoch."""
    from compare_searchers import FINAL_MODEL_CANDIDATES, best_checkpoints, leading_models

    accuracies = {"screen-0": [0.80, 0.86], "screen-1": [0.84, 0.83], "trial-0": [0.90, 0.93, 0.92], "trial-1": [0.70]}
    for trial, values in accuracies.items():
        results = [{"val_accuracy": value, "checkpoint_dir_name": f"checkpoint_{epoch:06d}"} for epoch, value in enumerate(values)]
        (tmp_path / trial).mkdir()
        (tmp_path / trial / "result.json").write_text("".join(json.dumps(result) + "\n" for result in results))
        for result in results:
            (tmp_path / trial / result["checkpoint_dir_name"]).mkdir()
            (tmp_path / trial / result["checkpoint_dir_name"] / MODEL_FILE).touch()
    best = best_checkpoints(tmp_path)
    assert best["trial-0"] == (0.93, tmp_path / "trial-0" / "checkpoint_000001" / MODEL_FILE)
    assert FINAL_MODEL_CANDIDATES == 3
    assert leading_models(best) == [best[trial][1] for trial in ("trial-0", "screen-0", "screen-1")]
    best["screen-0"][1].unlink()  # a checkpoint the search did not keep is no candidate
    assert leading_models(best) == [best[trial][1] for trial in ("trial-0", "screen-1", "trial-1")]
