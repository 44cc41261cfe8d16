"""The screening stage's searcher: cheap trials in their own study first, then the best of them on all the images."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from tuning.optimization import stored_study
from tuning.optimization.objective import SCREEN_EPOCHS_KEY, SCREEN_IMAGES_KEY, SCREEN_SECONDS_KEY, TRIAL_NUMBER_KEY, trial_name
from tuning.optimization.screening import Fidelity, ScreeningSearcher
from tuning.optimization.stored_study import screen_study_name
from tuning.optimization.study_searcher import StoredStudySearcher

SPACE = {"quality": FloatDistribution(0.1, 1.0)}
FIRST_POINTS = [{"quality": 0.3}, {"quality": 0.9}, {"quality": 0.6}]
FIDELITY = Fidelity(train_images=500, epochs=1)
FULL_EPOCHS = 3


def _terms(epochs: int, train_size: int | None) -> stored_study.ScoringTerms:
    return stored_study.ScoringTerms("val_accuracy", "maximize", epochs, train_size, "fashion-mnist", 0.1)


def _searcher(tmp_path: Path, screen_until: float, promoted: int = 2) -> ScreeningSearcher:
    """A search `full` whose screening study starts with FIRST_POINTS, as the driver makes them."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    storage = stored_study.open_storage(url)
    nothing = stored_study.WarmStart([], 0)
    stored_study.create(storage, screen_study_name("full"), _terms(FIDELITY.epochs, FIDELITY.train_images), FIRST_POINTS, nothing)
    stored_study.create(storage, "full", _terms(FULL_EPOCHS, None), [], nothing)

    def searcher(name: str, epochs: int) -> StoredStudySearcher:
        return StoredStudySearcher(url, name, SPACE, metric="val_accuracy", mode="max", max_epochs=epochs, seed=0,
                                   startup_trials=2)

    return ScreeningSearcher(searcher(screen_study_name("full"), FIDELITY.epochs), searcher("full", FULL_EPOCHS), FIDELITY,
                             screen_until=screen_until, promoted=promoted)


def _run(searcher: ScreeningSearcher, trial_id: str, epochs: int) -> dict:
    """Suggest a trial and report `epochs` epochs whose accuracy is its quality (times the epoch's share)."""
    config = searcher.suggest(trial_id)
    assert isinstance(config, dict), config
    for epoch in range(1, epochs + 1):
        result = {"val_accuracy": config["quality"] * epoch / epochs, "training_iteration": epoch, "planned_epochs": epochs}
        searcher.on_trial_result(trial_id, result)
    searcher.on_trial_complete(trial_id, result)
    return config


def test_screening_trials_train_cheaply_in_their_own_study_then_the_best_train_in_full(tmp_path: Path) -> None:
    screen_until = time.time() + 2.0
    searcher = _searcher(tmp_path, screen_until)
    screened = [_run(searcher, f"screen_{index}", FIDELITY.epochs) for index in range(4)]
    assert time.time() < screen_until, "screening took its whole share: the test's clock is too short for this host"
    time.sleep(screen_until - time.time() + 0.05)
    promoted = [_run(searcher, f"full_{index}", FULL_EPOCHS) for index in range(2)]
    after = _run(searcher, "proposed", FULL_EPOCHS)
    searcher.flush()

    assert [config["quality"] for config in screened[:3]] == [0.3, 0.9, 0.6], "the points to evaluate are screened first"
    assert all(config[SCREEN_IMAGES_KEY] == 500 and config[SCREEN_EPOCHS_KEY] == 1 for config in screened)
    assert [trial_name(config, "?") for config in screened] == ["screen-0", "screen-1", "screen-2", "screen-3"]
    best_two = sorted((config["quality"] for config in screened), reverse=True)[:2]
    assert [config["quality"] for config in promoted] == best_two, "the best screened, best first"
    assert not any(SCREEN_IMAGES_KEY in config for config in [*promoted, after]), "promoted trials train on all images"
    assert [trial_name(config, "?") for config in [*promoted, after]] == ["trial-0", "trial-1", "trial-2"]
    assert not searcher.screening

    storage = stored_study.open_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    screen = optuna.load_study(study_name=screen_study_name("full"), storage=storage)
    full = optuna.load_study(study_name="full", storage=storage)
    assert [trial.state for trial in screen.trials] == [TrialState.COMPLETE] * 4
    assert [trial.value for trial in screen.trials] == [config["quality"] for config in screened], "complete at its 1 epoch"
    assert [trial.params["quality"] for trial in full.trials] == [*best_two, after["quality"]]
    assert all(trial.state == TrialState.COMPLETE and trial.last_step == FULL_EPOCHS for trial in full.trials)


def test_screening_starts_no_trial_it_expects_to_end_after_its_share(tmp_path: Path) -> None:
    screen_until = time.time() + 6.0
    searcher = _searcher(tmp_path, screen_until, promoted=1)
    first = searcher.suggest("screen_0")
    time.sleep(0.6 * (screen_until - time.time()))  # the trial trains: another as long would end after the share
    searcher.on_trial_complete("screen_0", {"val_accuracy": first["quality"], "training_iteration": 1,  # type: ignore[index]
                                            "planned_epochs": FIDELITY.epochs})
    assert time.time() < screen_until, "the share ended: the test's clock is too short for this host"
    promoted = searcher.suggest("full_0")
    assert isinstance(promoted, dict) and SCREEN_IMAGES_KEY not in promoted and promoted["quality"] == 0.3
    assert not searcher.screening


def test_a_screening_trial_that_stopped_over_its_time_limit_is_pruned_and_never_promoted(tmp_path: Path) -> None:
    """The best draw stops after 1 of its 2 epochs (its pace said it would outrun its limit): no complete score."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    nothing = stored_study.WarmStart([], 0)
    storage = stored_study.open_storage(url)
    fidelity = Fidelity(train_images=500, epochs=2, most_seconds=30.0)
    stored_study.create(storage, screen_study_name("full"), _terms(2, 500), FIRST_POINTS, nothing)
    stored_study.create(storage, "full", _terms(FULL_EPOCHS, None), [], nothing)
    screen, full = (StoredStudySearcher(url, name, SPACE, metric="val_accuracy", mode="max", max_epochs=epochs, seed=0,
                                        startup_trials=2) for name, epochs in [(screen_study_name("full"), 2), ("full", FULL_EPOCHS)])
    screen_until = time.time() + 2.0
    searcher = ScreeningSearcher(screen, full, fidelity, screen_until=screen_until, promoted=1)
    configs = [searcher.suggest(f"screen_{index}") for index in range(3)]
    assert all(config[SCREEN_SECONDS_KEY] == 30.0 for config in configs), "each screening trial carries its limit"  # type: ignore[index]
    for index, config in enumerate(configs):
        epochs = 1 if config["quality"] == 0.9 else 2  # type: ignore[index]
        for epoch in range(1, epochs + 1):
            result = {"val_accuracy": config["quality"], "training_iteration": epoch, "planned_epochs": 2}  # type: ignore[index]
            searcher.on_trial_result(f"screen_{index}", result)
        searcher.on_trial_complete(f"screen_{index}", result)
    time.sleep(max(0.0, screen_until - time.time()) + 0.05)
    promoted = searcher.suggest("full_0")
    searcher.flush()

    assert promoted["quality"] == 0.6, "the best complete screening score is promoted, not the stopped trial's"  # type: ignore[index]
    states = {trial.params["quality"]: trial.state for trial in screen.study.trials}
    assert states == {0.3: TrialState.COMPLETE, 0.9: TrialState.PRUNED, 0.6: TrialState.COMPLETE}


def test_a_search_resumed_while_screening_promotes_at_once(tmp_path: Path) -> None:
    searcher = _searcher(tmp_path, screen_until=time.time() + 3600)
    for index in range(3):
        _run(searcher, f"screen_{index}", FIDELITY.epochs)
    searcher.save(str(tmp_path / "searcher-state.json"))

    restored = pickle.loads(pickle.dumps(searcher))  # as Tune keeps it: without the budget's clock
    restored.restore(str(tmp_path / "searcher-state.json"))
    assert restored.screening
    promoted = restored.suggest("resumed")
    assert isinstance(promoted, dict) and promoted["quality"] == 0.9 and promoted[TRIAL_NUMBER_KEY] == 0
    assert SCREEN_IMAGES_KEY not in promoted and not restored.screening


def test_promoted_configurations_outlive_a_crash_before_they_start(tmp_path: Path) -> None:
    screen_until = time.time() + 2.0
    searcher = _searcher(tmp_path, screen_until, promoted=2)
    for index in range(3):
        _run(searcher, f"screen_{index}", FIDELITY.epochs)
    searcher.save(str(tmp_path / "searcher-state.json"))
    last_saved = pickle.dumps(searcher)  # Tune's last save of the experiment: still screening
    time.sleep(max(0.0, screen_until - time.time()) + 0.05)
    assert searcher.suggest("full_0")["quality"] == 0.9  # type: ignore[index]
    searcher.flush()  # then the driver dies: the second promoted configuration has not started

    restored = pickle.loads(last_saved)
    restored.restore(str(tmp_path / "searcher-state.json"))
    resumed = [restored.suggest(f"resumed_{index}") for index in range(2)]
    restored.flush()
    assert [config["quality"] for config in resumed] == [0.9, 0.6], "the started one goes on, the queued one follows"  # type: ignore[index]
    full = optuna.load_study(study_name="full", storage=stored_study.open_storage(f"sqlite:///{tmp_path / 'optuna.db'}"))
    assert [trial.params["quality"] for trial in full.trials] == [0.9, 0.6], "each promoted once, none lost"
