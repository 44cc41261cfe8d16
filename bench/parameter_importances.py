"""Which dimensions of the space move a study's scores: Optuna's fANOVA importances over kept studies.

Usage (after a search, alone on the machine or not: it trains nothing):
    python bench/parameter_importances.py STUDIES/fmnist-tune-same-start-s0.db [MORE.db ...] [--study NAME] [--seeds 5]
    python bench/parameter_importances.py --table docs/results/parameter_importances_screening.json

Reads one study of each Optuna storage given (by default the one with the most trials, which in a search that
screens is its screening study), pools their finished trials when every study was scored on the same terms (metric,
direction, epochs, images, data and validation split: `tuning.optimization.stored_study`; studies scored otherwise
are refused, naming the file), and computes `optuna.importance.get_param_importances` with the fANOVA evaluator
once for each of --seeds forest seeds, so a reader sees how far an importance moves with the forest alone. Beside the
searched dimensions stand --decoys dimensions drawn at random for each trial, which the scores cannot follow: the
highest decoy's mean importance is the share a forest over this many trials gives to noise, and a dimension stands
above noise when its mean importance is at least twice that (a decoy itself may land above an ignored dimension); one
that does not, in a study that meets the acceptance below and tried several of its values, shows no effect. Writes
docs/results/parameter_importances_<name>.json. Acceptance: the study holds at least 30 finished trials, the count
below which a forest of this many dimensions reads noise (with fewer, the figures are printed and not read as
evidence).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path
from typing import Any

import optuna
import results
import sqlalchemy
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from tuning.optimization import stored_study

MIN_TRIALS = 30
DECOY_PREFIX = "decoy_"
NOISE_MARGIN = 2.0


def largest_study(storage: str) -> str:
    """The name of the storage's study with the most trials."""
    summaries = optuna.get_all_study_summaries(storage)
    if not summaries:
        raise ValueError("it holds no study")
    return max(summaries, key=lambda summary: summary.n_trials).study_name


def common_terms(studies: dict[Path, optuna.Study]) -> dict[str, Any]:
    """The scoring terms every study records; ValueError naming the first file whose study was scored otherwise."""
    (first_file, first), *others = studies.items()
    terms = first.user_attrs.get(stored_study.SCORED_ON_ATTR, {})
    for path, study in others:
        theirs = study.user_attrs.get(stored_study.SCORED_ON_ATTR, {})
        if theirs != terms:
            differing = sorted(key for key in {*terms, *theirs} if terms.get(key) != theirs.get(key))
            raise ValueError(f"{path}: study {study.study_name} was scored on other terms than {first_file}'s "
                             f"({', '.join(differing)}); its scores do not pool")
    return terms


def with_decoys(studies: list[optuna.Study], decoys: int, seed: int = 0) -> optuna.Study:
    """An in-memory study of the studies' finished trials, each with `decoys` more parameters drawn uniformly at
    random."""
    draws = random.Random(seed)
    decoy_distributions = {f"{DECOY_PREFIX}{index}": FloatDistribution(0.0, 1.0) for index in range(decoys)}
    copy = optuna.create_study(directions=studies[0].directions)
    for trial in (trial for study in studies for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))):
        copy.add_trial(optuna.trial.create_trial(
            params={**trial.params, **{name: draws.random() for name in decoy_distributions}},
            distributions={**trial.distributions, **decoy_distributions}, value=trial.value))
    return copy


def importances(study: optuna.Study, seeds: int) -> dict[str, list[float]]:
    """Each dimension's fANOVA importance under forest seeds 0..seeds-1, dimensions in the study's order."""
    by_seed = [optuna.importance.get_param_importances(
        study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=seed), normalize=True) for seed in range(seeds)]
    return {name: [float(run[name]) for run in by_seed] for name in by_seed[0]}


def decoy_level(by_dimension: dict[str, list[float]]) -> float:
    """The highest mean importance of a decoy dimension: what the forest gives a dimension the scores ignore."""
    return max(statistics.fmean(values) for name, values in by_dimension.items() if name.startswith(DECOY_PREFIX))


def distinct_values(study: optuna.Study) -> dict[str, int]:
    """How many values of each dimension the study's finished trials tried: a forest cannot tell the effect of a
    dimension its sampler barely moved."""
    seen: dict[str, set[Any]] = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        for name, value in trial.params.items():
            seen.setdefault(name, set()).add(value)
    return {name: len(values) for name, values in seen.items()}


def rows(by_dimension: dict[str, list[float]], tried: dict[str, int]) -> list[dict[str, Any]]:
    """One row a searched dimension, most important first: the mean, lowest and highest importance, whether it
    stands above noise (a mean of at least NOISE_MARGIN times the decoys') and how many of its values were tried."""
    level = decoy_level(by_dimension)
    table = [{"dimension": name, "mean": statistics.fmean(values), "low": min(values), "high": max(values),
              "above_noise": statistics.fmean(values) >= NOISE_MARGIN * level, "values_tried": tried[name]}
             for name, values in by_dimension.items() if not name.startswith(DECOY_PREFIX)]
    return sorted(table, key=lambda row: row["mean"], reverse=True)


def markdown_table(record: dict[str, Any]) -> str:
    """The docs' table of an importances results file (`--table FILE`)."""
    figures = record["figures"]
    header = f"| dimension | importance (mean of {figures['seeds']} forest seeds) | lowest | highest | above noise | values tried |"
    lines = [header, "|---|---|---|---|---|---|"]
    lines += [f"| {row['dimension']} | {row['mean']:.3f} | {row['low']:.3f} | {row['high']:.3f} | "
              f"{'yes' if row['above_noise'] else 'no'} | {row['values_tried']} |" for row in figures["rows"]]
    metric = figures["scored_on"].get("metric", "its objective")
    files = [Path(path).name for path in figures["files"]]
    label = f"Study `{figures['studies'][0]}` of {files[0]}" if len(files) == 1 else (
        "Studies `" + "`, `".join(dict.fromkeys(figures["studies"])) + "` of " + ", ".join(files) + ", pooled")
    lines += ["", (f"{label}: {figures['finished_trials']} finished trials, scored on {metric}; "
              f"above noise means a mean importance of at least {NOISE_MARGIN:g} times the highest of {figures['decoys']} random "
              f"decoy dimensions' ({figures['decoy_level']:.3f}).")]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study_db", type=Path, nargs="*", help="Optuna SQLite storages (--keep-studies writes them), "
                        "their studies pooled")
    parser.add_argument("--study", help="the study's name (default: the storage's study with the most trials)")
    parser.add_argument("--seeds", type=int, default=5, help="fANOVA forest seeds (at least 1)")
    parser.add_argument("--decoys", type=int, default=5, help="random dimensions beside the searched ones (at least 1)")
    parser.add_argument("--results", default=None, help="the results file's name in docs/results/ "
                        "(default: parameter_importances_<the storage file's name>)")
    results.add_table_option(parser)
    options = parser.parse_args()
    if options.table:
        results.print_table(options.table, markdown_table)
        return 0
    if not options.study_db:
        parser.error("STUDY_DB: give at least one Optuna SQLite storage")
    for path in options.study_db:
        if not path.is_file():
            parser.error(f"STUDY_DB: no file at {path}")
    if options.seeds < 1 or options.decoys < 1:
        parser.error(f"--seeds and --decoys must be at least 1, got {options.seeds} and {options.decoys}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    studies = {path: _load(parser, path, options.study) for path in options.study_db}
    try:
        scored_on = common_terms(studies)
    except ValueError as error:
        parser.error(str(error))
    finished = sum(len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) for study in studies.values())
    if finished < 2:
        parser.error(f"{', '.join(map(str, studies))}: {finished} finished trials; importances need 2 or more")
    pooled = with_decoys(list(studies.values()), options.decoys)
    by_dimension = importances(pooled, options.seeds)
    names = [study.study_name for study in studies.values()]
    figures = {"studies": names, "files": [str(path) for path in studies], "finished_trials": finished,
               "scored_on": scored_on, "seeds": options.seeds,
               "decoys": options.decoys, "decoy_level": decoy_level(by_dimension), "rows": rows(by_dimension, distinct_values(pooled))}
    record = {"figures": figures}
    print(markdown_table(record))
    checks = [(f"the study holds at least {MIN_TRIALS} finished trials", finished >= MIN_TRIALS)]
    path = results.write(options.results or f"parameter_importances_{options.study_db[0].stem}", figures, checks)
    print(f"results: {path}")
    return 0 if all(held for _, held in checks) else 1


def _load(parser: argparse.ArgumentParser, path: Path, name: str | None) -> optuna.Study:
    """The storage's study `name` (default: its largest); a one-line parser error for a file that holds none."""
    storage = f"sqlite:///{path.resolve()}"
    try:
        return optuna.load_study(study_name=name or largest_study(storage), storage=storage)
    except (KeyError, ValueError) as error:
        parser.error(f"{path}: {error}")
    except sqlalchemy.exc.SQLAlchemyError:
        parser.error(f"{path}: not an Optuna SQLite storage")


if __name__ == "__main__":
    sys.exit(main())
