"""The stored Optuna study behind the search: what Tune tells it, resume, and warm starts."""

from __future__ import annotations

import dataclasses
import pickle
import threading
import time
from pathlib import Path

import optuna
import pytest
import ray
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import Searcher

from tuning.optimization import stored_study
from tuning.optimization.objective import TRIAL_NUMBER_KEY
from tuning.optimization.study_searcher import StoredStudySearcher
from tuning.testing.services import private_postgres

pytestmark = pytest.mark.slow  # runs Tune on a local Ray

EPOCHS = 4
SPACE = {"quality": FloatDistribution(0.1, 1.0), "width": CategoricalDistribution([16, 32])}
BASELINE = {"quality": 1.0, "width": 16}
TERMS = stored_study.ScoringTerms("val_accuracy", "maximize", EPOCHS, None, "fashion-mnist", 0.1)


def _curve(config: dict) -> None:
    """A trial whose accuracy after epoch e is quality * e / EPOCHS: the best trials are known in advance."""
    for epoch in range(1, EPOCHS + 1):
        tune.report({"val_accuracy": config["quality"] * epoch / EPOCHS})


def _new_study(tmp_path: Path, name: str = "searched") -> tuple[str, optuna.storages.BaseStorage]:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    storage = stored_study.open_storage(url)
    stored_study.create(storage, name, TERMS, [BASELINE], stored_study.WarmStart([], 0))
    return url, storage


def _searcher(url: str, name: str = "searched", max_epochs: int = EPOCHS, startup_trials: int = 10) -> StoredStudySearcher:
    """A searcher over SPACE, seed 0, with Optuna's own 10 random startup trials unless told otherwise."""
    return StoredStudySearcher(url, name, SPACE, metric="val_accuracy", mode="max", max_epochs=max_epochs, seed=0,
                               startup_trials=startup_trials)


@pytest.fixture(scope="module")
def searched_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[optuna.Study, tune.ResultGrid]:
    tmp_path = tmp_path_factory.mktemp("study")
    url, storage = _new_study(tmp_path)
    searcher = _searcher(url)
    ray.init(address="local", num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    try:
        results = tune.Tuner(
            _curve,
            tune_config=tune.TuneConfig(
                search_alg=searcher, scheduler=ASHAScheduler(max_t=EPOCHS, grace_period=1, reduction_factor=2),
                num_samples=6, max_concurrent_trials=1, metric="val_accuracy", mode="max",
            ),
            run_config=tune.RunConfig(storage_path=str(tmp_path / "results"), name="searched", verbose=0),
        ).fit()
    finally:
        ray.shutdown()
    return optuna.load_study(study_name="searched", storage=storage), results


def test_every_tune_trial_is_one_optuna_trial_starting_from_the_baseline(searched_study) -> None:
    study, results = searched_study
    tune_ids = {result.metrics["trial_id"] for result in results}
    optuna_ids = [trial.user_attrs[stored_study.TUNE_TRIAL_ID_ATTR] for trial in study.trials]
    assert sorted(optuna_ids) == sorted(tune_ids) and len(optuna_ids) == 6
    assert study.trials[0].params == BASELINE


def test_each_epoch_is_an_intermediate_value(searched_study) -> None:
    study, _ = searched_study
    for trial in study.trials:
        steps = sorted(trial.intermediate_values)
        assert steps == list(range(1, len(steps) + 1))
        for step, value in trial.intermediate_values.items():
            assert value == pytest.approx(trial.params["quality"] * step / EPOCHS)


def test_stopped_trials_are_pruned_and_finished_ones_complete_at_their_best(searched_study) -> None:
    study, _ = searched_study
    states = {trial.number: trial.state for trial in study.trials}
    assert TrialState.PRUNED in states.values() and TrialState.COMPLETE in states.values(), states
    for trial in study.trials:
        if trial.state == TrialState.COMPLETE:
            assert trial.last_step == EPOCHS and trial.value == max(trial.intermediate_values.values())
        else:
            assert trial.state == TrialState.PRUNED and trial.last_step < EPOCHS
            assert trial.value == trial.intermediate_values[trial.last_step]


def test_restored_searcher_keeps_its_trials_and_gives_orphans_to_its_next_trials(tmp_path: Path) -> None:
    url, storage = _new_study(tmp_path)
    searcher = _searcher(url)
    first = searcher.suggest("trial_a")
    searcher.on_trial_result("trial_a", {"val_accuracy": 0.5, "training_iteration": 1})
    searcher.save(str(tmp_path / "searcher-state.json"))
    orphan = searcher.suggest("started_after_the_last_save")  # the driver dies before saving this one
    searcher.on_trial_result("started_after_the_last_save", {"val_accuracy": 0.4, "training_iteration": 1})
    searcher.flush()

    restored = pickle.loads(pickle.dumps(searcher))  # as Tune keeps it with the experiment
    restored.restore(str(tmp_path / "searcher-state.json"))
    restored.on_trial_result("trial_a", {"val_accuracy": 0.75, "training_iteration": 2})
    restored.on_trial_complete("trial_a", {"val_accuracy": 0.75, "training_iteration": 2})
    successor = restored.suggest("successor")
    restored.on_trial_result("successor", {"val_accuracy": 0.3, "training_iteration": 1})
    restored.on_trial_complete("successor", {"val_accuracy": 0.6, "training_iteration": 2})
    after = restored.suggest("after")
    restored.flush()
    trials = optuna.load_study(study_name="searched", storage=storage).trials
    assert first == {**BASELINE, TRIAL_NUMBER_KEY: 0}, "the config names its trial by number"
    assert successor == orphan and orphan[TRIAL_NUMBER_KEY] == 1, "the orphan's settings, number and name"
    assert after[TRIAL_NUMBER_KEY] == 2 and len(trials) == 3
    assert trials[0].state == TrialState.PRUNED and trials[0].intermediate_values == {1: 0.5, 2: 0.75}
    assert trials[1].state == TrialState.PRUNED and trials[1].intermediate_values == {1: 0.4, 2: 0.6}
    assert trials[1].user_attrs[stored_study.TUNE_TRIAL_ID_ATTR] == "successor"


def test_epochs_run_again_after_a_driver_crash_keep_their_first_values(tmp_path: Path) -> None:
    """Tune restores a crashed driver's last saved state, which can be an epoch behind what the trials
    reported: it runs those epochs again, even for a trial the study already holds as finished."""
    url, storage = _new_study(tmp_path)
    searcher = _searcher(url)
    searcher.suggest("finished_before_the_crash")
    searcher.suggest("running_at_the_crash")
    for epoch in range(1, EPOCHS):
        searcher.on_trial_result("finished_before_the_crash", {"val_accuracy": 0.5 + epoch / 10, "training_iteration": epoch})
    searcher.on_trial_complete("finished_before_the_crash", {"val_accuracy": 0.9, "training_iteration": EPOCHS})
    searcher.on_trial_result("running_at_the_crash", {"val_accuracy": 0.3, "training_iteration": 1})
    searcher.on_trial_result("running_at_the_crash", {"val_accuracy": 0.4, "training_iteration": 2})
    searcher.flush()  # what the crashed driver wrote reached the database

    replayed = pickle.loads(pickle.dumps(searcher))
    replayed.on_trial_result("finished_before_the_crash", {"val_accuracy": 0.85, "training_iteration": EPOCHS})
    replayed.on_trial_complete("finished_before_the_crash", {"val_accuracy": 0.85, "training_iteration": EPOCHS})
    replayed.on_trial_result("running_at_the_crash", {"val_accuracy": 0.35, "training_iteration": 2})
    replayed.on_trial_complete("running_at_the_crash", {"val_accuracy": 0.45, "training_iteration": 3})
    replayed.flush()
    finished, running = optuna.load_study(study_name="searched", storage=storage).trials
    assert finished.state == TrialState.COMPLETE and finished.value == 0.9
    assert finished.intermediate_values == {1: 0.6, 2: 0.7, 3: 0.8, 4: 0.9}
    assert running.state == TrialState.PRUNED and running.intermediate_values == {1: 0.3, 2: 0.4, 3: 0.45}


def test_a_trial_that_ends_its_budget_shortened_plan_is_complete_and_one_stopped_before_it_pruned(tmp_path: Path) -> None:
    """Under a time budget a trial plans fewer than `max_epochs` and ends with its plan: that is a finished trial, and
    TPE must see its best value as final; only a trial stopped before its plan ended (ASHA) is PRUNED."""
    url, storage = _new_study(tmp_path)
    searcher = _searcher(url)
    searcher.suggest("ended_its_plan")
    searcher.suggest("stopped_by_asha")
    searcher.on_trial_result("ended_its_plan", {"val_accuracy": 0.7, "training_iteration": 1, "planned_epochs": 2})
    searcher.on_trial_complete("ended_its_plan", {"val_accuracy": 0.8, "training_iteration": 2, "planned_epochs": 2})
    searcher.on_trial_complete("stopped_by_asha", {"val_accuracy": 0.6, "training_iteration": 1, "planned_epochs": 3})
    searcher.flush()
    ended, stopped = optuna.load_study(study_name="searched", storage=storage).trials
    assert ended.state == TrialState.COMPLETE and ended.value == 0.8
    assert stopped.state == TrialState.PRUNED and stopped.value == 0.6


def _timed_searcher(url: str, deadline: float | None) -> StoredStudySearcher:
    return StoredStudySearcher(url, "searched", SPACE, metric="val_accuracy", mode="max", max_epochs=2, seed=0,
                               startup_trials=10, deadline=deadline)


def test_no_trial_starts_once_the_fastest_epoch_cannot_end_before_the_deadline(tmp_path: Path) -> None:
    url, storage = _new_study(tmp_path)
    searcher = _timed_searcher(url, deadline=time.time() + 30)
    assert isinstance(searcher.suggest("first"), dict)  # no epoch seen yet: nothing to go by
    searcher.on_trial_result("first", {"val_accuracy": 0.5, "training_iteration": 1, "time_this_iter_s": 45.0})
    assert searcher.suggest("after_a_slow_epoch") == Searcher.FINISHED
    searcher.flush()
    resumed = pickle.loads(pickle.dumps(searcher))  # a resumed search has a budget of its own
    assert isinstance(resumed.suggest("after_resume"), dict)
    resumed.flush()

    searcher = _timed_searcher(url, deadline=time.time() + 30)
    searcher.suggest("fast")
    searcher.on_trial_result("fast", {"val_accuracy": 0.5, "training_iteration": 1, "time_this_iter_s": 10.0})
    searcher.on_trial_result("fast", {"val_accuracy": 0.6, "training_iteration": 2, "time_this_iter_s": 50.0})
    assert isinstance(searcher.suggest("fits"), dict)  # the fastest epoch seen, 10 s, fits in 30
    searcher.flush()
    asked = [trial.user_attrs[stored_study.TUNE_TRIAL_ID_ATTR] for trial in optuna.load_study(
        study_name="searched", storage=storage).trials]
    assert asked == ["first", "after_resume", "fast", "fits"]


def _one_second_epochs(config: dict) -> None:
    for epoch in (1, 2):
        time.sleep(1.0)
        tune.report({"val_accuracy": config["quality"] * epoch / 2})


def test_a_search_with_a_deadline_ends_on_its_own_with_every_trial_reported(tmp_path: Path) -> None:
    """As many trials as the budget allows (num_samples -1), but Tune's own time budget set far beyond the deadline:
    the searcher alone ends the search."""
    url, _ = _new_study(tmp_path)
    ray.init(address="local", num_cpus=1, include_dashboard=False, configure_logging=False, log_to_driver=False)
    try:
        deadline = time.time() + 10
        results = tune.Tuner(
            _one_second_epochs,
            tune_config=tune.TuneConfig(search_alg=_timed_searcher(url, deadline), num_samples=-1, time_budget_s=120,
                                        max_concurrent_trials=1, metric="val_accuracy", mode="max"),
            run_config=tune.RunConfig(storage_path=str(tmp_path / "results"), name="timed", verbose=0),
        ).fit()
        ended = time.time()
    finally:
        ray.shutdown()
    assert ended < deadline + 20
    assert len(results) >= 1 and all(result.metrics.get("training_iteration") == 2 for result in results)


def test_tpe_models_the_results_once_the_startup_trials_are_done(tmp_path: Path) -> None:
    """Two searches told the same results: the one with 2 startup trials proposes its third trial from TPE's
    model, the one with Optuna's 10 still at random (the same seeded draws until then)."""
    proposals = {}
    for startup_trials in (2, 10):
        (folder := tmp_path / str(startup_trials)).mkdir()
        url, _ = _new_study(folder)
        searcher = _searcher(url, startup_trials=startup_trials)
        configs = []
        for trial_id in ("baseline", "random", "third"):
            configs.append(searcher.suggest(trial_id))
            searcher.on_trial_complete(trial_id, {"val_accuracy": configs[-1]["quality"], "training_iteration": EPOCHS})
        proposals[startup_trials] = configs
    assert proposals[2][:2] == proposals[10][:2] and proposals[2][0] == {**BASELINE, TRIAL_NUMBER_KEY: 0}
    assert proposals[2][2] != proposals[10][2]


def test_warm_start_keeps_the_trials_the_new_space_could_ask_for(tmp_path: Path) -> None:
    storage = stored_study.open_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    earlier = optuna.create_study(storage=storage, study_name="earlier", direction="maximize")
    old_space = {**SPACE, "depth": CategoricalDistribution([1, 2])}
    for quality, width, depth, state in ((0.5, 16, 1, TrialState.COMPLETE), (0.2, 16, 1, TrialState.COMPLETE),
                                         (0.6, 32, 1, TrialState.PRUNED), (0.7, 16, 2, TrialState.COMPLETE)):
        earlier.add_trial(optuna.trial.create_trial(
            state=state, value=quality, params={"quality": quality, "width": width, "depth": depth},
            distributions=old_space, intermediate_values={1: quality},
        ))
    earlier.add_trial(optuna.trial.create_trial(state=TrialState.FAIL, params={"quality": 0.5, "width": 16, "depth": 1},
                                                distributions=old_space))
    narrower = {"quality": FloatDistribution(0.3, 1.0), "width": CategoricalDistribution([16, 32])}

    earlier.set_user_attr(stored_study.SCORED_ON_ATTR, dataclasses.asdict(TERMS))
    warm = stored_study.warm_start_trials(storage, ("earlier",), narrower, fixed={"depth": 1}, terms=TERMS)

    assert [(trial.params, trial.state) for trial in warm.trials] == [
        ({"quality": 0.5, "width": 16}, TrialState.COMPLETE), ({"quality": 0.6, "width": 32}, TrialState.PRUNED),
    ]
    assert warm.skipped == 2  # quality 0.2 is outside the new range; depth 2 is not the new fixed depth
    assert all(trial.user_attrs[stored_study.WARM_START_SOURCE_ATTR] == "earlier" for trial in warm.trials)
    seeded = stored_study.create(storage, "seeded", TERMS, [{"quality": 0.5, "width": 16}, {"quality": 0.7, "width": 32}], warm)
    # the first point to evaluate was already tried by the warm-start trials: only the second is queued
    assert [trial.state for trial in seeded.trials] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.WAITING]
    assert seeded.ask(narrower).params == {"quality": 0.7, "width": 32}


def _earlier_study(storage: optuna.storages.BaseStorage, terms: dict | None, direction: str = "maximize") -> None:
    """A finished study with one complete trial (best 0.8 at epoch 2, 0.7 at its last, 3) and one pruned."""
    earlier = optuna.create_study(storage=storage, study_name="earlier", direction=direction)
    if terms is not None:
        earlier.set_user_attr(stored_study.SCORED_ON_ATTR, terms)
    earlier.add_trial(optuna.trial.create_trial(state=TrialState.COMPLETE, value=0.8, params=BASELINE, distributions=SPACE,
                                                intermediate_values={1: 0.5, 2: 0.8, 3: 0.7}))
    earlier.add_trial(optuna.trial.create_trial(state=TrialState.PRUNED, value=0.4, params={"quality": 0.5, "width": 32},
                                                distributions=SPACE, intermediate_values={1: 0.4}))


@pytest.mark.parametrize(("earlier_terms", "direction"), [
    ({**dataclasses.asdict(TERMS), "metric": "val_f1"}, "maximize"),
    ({**dataclasses.asdict(TERMS), "metric": "val_loss", "direction": "minimize"}, "minimize"),
    (None, "minimize"),
])
def test_a_warm_start_from_another_metric_or_direction_is_refused_in_one_line(tmp_path: Path, earlier_terms, direction) -> None:
    storage = stored_study.open_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    _earlier_study(storage, earlier_terms, direction)
    with pytest.raises(stored_study.StudyError) as raised:
        stored_study.warm_start_trials(storage, ("earlier",), SPACE, fixed={}, terms=TERMS)
    message = str(raised.value)
    assert message.startswith("--warm-start earlier: its trials ") and message.endswith("their values do not compare")
    assert "this search val_accuracy (maximize)" in message and "\n" not in message


@pytest.mark.parametrize(("earlier_terms", "difference"), [
    ({**dataclasses.asdict(TERMS), "max_epochs": 9}, f"earlier: --max-epochs 9 (this search: {EPOCHS})"),
    ({**dataclasses.asdict(TERMS), "train_size": 2000}, "earlier: --train-size 2000 (this search: None)"),
    ({**dataclasses.asdict(TERMS), "dataset": "other"}, "earlier: dataset other (this search: fashion-mnist)"),
    (None, "earlier: its terms are not recorded"),
])
def test_complete_trials_scored_on_other_terms_come_as_pruned_at_their_last_epoch(tmp_path: Path, earlier_terms, difference) -> None:
    storage = stored_study.open_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    _earlier_study(storage, earlier_terms)
    warm = stored_study.warm_start_trials(storage, ("earlier",), SPACE, fixed={}, terms=TERMS)
    assert [(trial.state, trial.value) for trial in warm.trials] == [(TrialState.PRUNED, 0.7), (TrialState.PRUNED, 0.4)]
    assert (warm.demoted, warm.differences) == (1, (difference,))


def test_complete_trials_scored_on_the_same_terms_stay_complete(tmp_path: Path) -> None:
    storage = stored_study.open_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    _earlier_study(storage, dataclasses.asdict(TERMS))
    warm = stored_study.warm_start_trials(storage, ("earlier",), SPACE, fixed={}, terms=TERMS)
    assert [(trial.state, trial.value) for trial in warm.trials] == [(TrialState.COMPLETE, 0.8), (TrialState.PRUNED, 0.4)]
    assert (warm.demoted, warm.differences) == (0, ())
    seeded = stored_study.create(storage, "seeded", TERMS, [], warm)
    assert seeded.user_attrs[stored_study.SCORED_ON_ATTR] == dataclasses.asdict(TERMS)


@pytest.mark.parametrize(("url", "message"), [
    ("sqlite:////no/such/folder/optuna.db", "--study-storage sqlite:////no/such/folder/optuna.db: cannot open the study database"),
    ("postgresql://someone:secret@127.0.0.1:5432/x", "for PostgreSQL write postgresql+psycopg2://"),
    ("nonsense", "--study-storage nonsense: cannot open the study database"),
])
def test_an_unusable_storage_is_one_named_line_without_its_password(url: str, message: str) -> None:
    with pytest.raises(stored_study.StudyError) as raised:
        stored_study.open_storage(url)
    assert message in str(raised.value) and "secret" not in str(raised.value) and "\n" not in str(raised.value)


def test_a_missing_study_database_is_checked_without_creating_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing.db'}"
    storage = stored_study.existing_storage(url)
    with pytest.raises(stored_study.StudyError, match="holds no study earlier"):
        stored_study.check_exists(storage, url, "earlier")
    with pytest.raises(stored_study.StudyError, match="--warm-start earlier: no study of that name"):
        stored_study.check_new(storage, url, "new", ("earlier",))
    assert storage is None and not (tmp_path / "missing.db").exists()


def test_a_restarted_study_database_costs_nothing() -> None:
    """The database goes down between two epochs and comes back: Tune's loop does not wait for it, the searcher's
    writes wait and land once it is back, nothing is lost."""
    with private_postgres() as database:
        stored_study.create(stored_study.open_storage(database.url), "restarted", TERMS, [BASELINE], stored_study.WarmStart([], 0))
        searcher = _searcher(database.url, "restarted", max_epochs=2)
        assert searcher.suggest("t1") == {**BASELINE, TRIAL_NUMBER_KEY: 0}
        searcher.on_trial_result("t1", {"val_accuracy": 0.5, "training_iteration": 1})
        database.stop()
        restart = threading.Timer(4.0, database.start)
        restart.start()
        started = time.monotonic()
        searcher.on_trial_result("t1", {"val_accuracy": 0.75, "training_iteration": 2})
        searcher.on_trial_complete("t1", {"val_accuracy": 0.75, "training_iteration": 2})
        told = time.monotonic() - started
        searcher.flush()
        landed = time.monotonic() - started
        restart.join()
        (trial,) = optuna.load_study(study_name="restarted", storage=stored_study.open_storage(database.url)).trials
    assert told < 2.0, "Tune's loop waited for the database"
    assert landed >= 3.0, "the writes went through while the database was down?"
    assert trial.state == TrialState.COMPLETE and trial.intermediate_values == {1: 0.5, 2: 0.75} and trial.value == 0.75
