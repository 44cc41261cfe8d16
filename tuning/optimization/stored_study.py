"""The search's Optuna study, kept in a database: opened, checked, created (with warm-start trials), read.

Every search has one study, named after the search, in the storage given by `--study-storage`
(default: `$OPTUNA_STORAGE`, else `sqlite:///optuna.db` beside `mlflow.db`). optuna-dashboard
watches it live; `python -m tuning.report` reads it; `--warm-start NAME` seeds a new study with the
finished trials of earlier ones.

Example:
    >>> storage = open_storage("sqlite:///optuna.db")          # doctest: +SKIP
    >>> optuna.load_study(study_name="fmnist-search-20261127-101500", storage=storage)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from tuning.optimization.space import contains
from tuning.runtime.error_text import first_line

TUNE_TRIAL_ID_ATTR = "tune_trial_id"
"""User attribute of an Optuna trial: the Ray Tune trial it is (its folder and MLflow run carry the same id)."""
WARM_START_SOURCE_ATTR = "warm_start_from"
"""User attribute of a warm-start trial: the study it was copied from."""
SCORED_ON_ATTR = "scored_on"
"""User attribute of a study: its `ScoringTerms`, so that a later search can tell whether its scores compare."""
FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
TERM_NAMES = {"metric": "--metric", "direction": "direction", "max_epochs": "--max-epochs", "train_size": "--train-size",
              "dataset": "dataset", "validation_fraction": "--validation-fraction"}


def screen_study_name(search_name: str) -> str:
    """The name of a search's screening study (`tuning.optimization.screening`), beside the search's own."""
    return f"{search_name}-screen"


class StudyError(ValueError):
    """The study storage or a named study cannot be used; the message names the flag."""


@dataclass(frozen=True)
class ScoringTerms:
    """What a study's values mean: the metric and its direction, and what they were measured after and on."""

    metric: str
    direction: Literal["minimize", "maximize"]
    max_epochs: int
    train_size: int | None
    dataset: str
    """The dataset's digest."""
    validation_fraction: float

    def differences(self, earlier: dict[str, Any] | None) -> list[str]:
        """The terms in which `earlier` (a study's recorded terms; None when it recorded none) differs from these,
        e.g. `--max-epochs 9 (this search: 27)`."""
        if earlier is None:
            return ["its terms are not recorded"]
        return [f"{TERM_NAMES[name]} {earlier.get(name)} (this search: {value})" for name, value in asdict(self).items()
                if earlier.get(name) != value]


@dataclass(frozen=True)
class WarmStart:
    """Finished trials of earlier studies that fit the new space, how many did not, and how many of the kept ones were
    demoted to PRUNED because their study scored on other terms (with what differed)."""

    trials: list[FrozenTrial]
    skipped: int
    demoted: int = 0
    differences: tuple[str, ...] = ()


def shown_url(url: str) -> str:
    """The storage URL with any password masked, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not a URL at all: say it as given
        return url


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """The study database at `url` (a new SQLite file is created), reconnecting after a database restart."""
    engine_kwargs = {"pool_pre_ping": True} if not url.startswith("sqlite") else {}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except (ImportError, SQLAlchemyError, ValueError) as error:  # no driver, a bad URL, an unreachable database
        cause = error.__cause__ if isinstance(error, ImportError) and error.__cause__ else error
        hint = "; for PostgreSQL write postgresql+psycopg2://" if isinstance(error, ImportError) else ""
        raise StudyError(f"--study-storage {shown_url(url)}: cannot open the study database ({first_line(cause)}{hint})") from None


def existing_storage(url: str) -> optuna.storages.RDBStorage | None:
    """The study database at `url`, or None for a SQLite file not created yet (checked without writing)."""
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return None
    return open_storage(url)


def study_names(storage: optuna.storages.BaseStorage | None) -> set[str]:
    """The names of every study in `storage` (none in a database not created yet)."""
    if storage is None:
        return set()
    return {summary.study_name for summary in optuna.get_all_study_summaries(storage, include_best_trial=False)}


def check_new(storage: optuna.storages.BaseStorage | None, url: str, name: str, warm_start: tuple[str, ...]) -> None:
    """A new search needs a free study name, and every `--warm-start` study must exist."""
    names = study_names(storage)
    if name in names:
        raise StudyError(f"--name {name}: {shown_url(url)} already holds a study of that name; pick another --name")
    for source in warm_start:
        if source not in names:
            raise StudyError(f"--warm-start {source}: no study of that name in {shown_url(url)}")


def check_exists(storage: optuna.storages.BaseStorage | None, url: str, name: str) -> optuna.storages.BaseStorage:
    """The storage holding study `name` (a resumed search goes on with it; a report reads it)."""
    if storage is None or name not in study_names(storage):
        raise StudyError(f"--study-storage {shown_url(url)}: holds no study {name}")
    return storage


def create(
    storage: optuna.storages.BaseStorage, name: str, terms: ScoringTerms, first_trials: list[dict[str, Any]],
    warm_start: WarmStart,
) -> optuna.Study:
    """The search's study, recording its scoring `terms`: warm-start trials added, then each of `first_trials` queued,
    in order, unless a warm-start trial already tried it."""
    study = optuna.create_study(storage=storage, study_name=name, direction=terms.direction)
    study.set_user_attr(SCORED_ON_ATTR, asdict(terms))
    study.add_trials(warm_start.trials)
    for params in first_trials:
        if all(trial.params != params for trial in warm_start.trials):
            study.enqueue_trial(params)
    return study


def close_unfinished(storage: optuna.storages.BaseStorage, name: str) -> int:
    """Close the trials of study `name` still RUNNING after its search ended, and say how many: Tune stops the trials
    running when its time budget ends without telling the searcher. Each becomes PRUNED at its last epoch's value, or
    FAIL when no epoch ended, so that optuna-dashboard and later warm starts do not take it for one still training."""
    study = optuna.load_study(study_name=name, storage=storage)
    unfinished = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in unfinished:  # Optuna's tell gives a pruned trial its last step's value
        study.tell(trial.number, state=TrialState.PRUNED if trial.intermediate_values else TrialState.FAIL)
    return len(unfinished)


def warm_start_trials(
    storage: optuna.storages.BaseStorage, sources: tuple[str, ...], distributions: dict[str, BaseDistribution],
    fixed: dict[str, Any], terms: ScoringTerms,
) -> WarmStart:
    """The finished trials of each `sources` study that the new space could have asked for: every searched
    setting inside its distribution, and every setting the new space holds fixed at that value. A study scored by
    another metric or direction is refused; one scored on other terms (epochs, training images, data, validation share)
    gives its trials as PRUNED at their last epoch, so TPE does not take their values as final ones of this search."""
    kept, skipped, demoted, differences = [], 0, 0, []
    for source in sources:
        study = optuna.load_study(study_name=source, storage=storage)
        recorded = study.user_attrs.get(SCORED_ON_ATTR)
        if study.direction.name.lower() != terms.direction or (recorded and recorded.get("metric") != terms.metric):
            raise StudyError(f"--warm-start {source}: its trials {(recorded or {}).get('metric', 'scored')} "
                             f"({study.direction.name.lower()}); this search {terms.metric} ({terms.direction}): "
                             "their values do not compare")
        differs = terms.differences(recorded)
        differences += [f"{source}: {difference}" for difference in differs]
        for trial in study.get_trials(deepcopy=False, states=FINISHED_STATES):
            if not _fits(trial.params, distributions, fixed):
                skipped += 1
                continue
            state, value = trial.state, trial.value
            if differs and state == TrialState.COMPLETE and trial.last_step is not None:
                state, value, demoted = TrialState.PRUNED, trial.intermediate_values[trial.last_step], demoted + 1
            kept.append(optuna.trial.create_trial(
                state=state, value=value, params={name: trial.params[name] for name in distributions},
                distributions=distributions, intermediate_values=trial.intermediate_values,
                user_attrs={**trial.user_attrs, WARM_START_SOURCE_ATTR: source},
            ))
    return WarmStart(kept, skipped, demoted, tuple(differences))


def _fits(params: dict[str, Any], distributions: dict[str, BaseDistribution], fixed: dict[str, Any]) -> bool:
    searched_inside = set(params) >= set(distributions) and all(
        contains(distribution, params[name]) for name, distribution in distributions.items()
    )
    return searched_inside and all(params[name] == value for name, value in fixed.items() if name in params)
