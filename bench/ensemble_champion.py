"""The champion of a finished search: each leading trial's validation and test scores, and the average the search keeps.

Usage: FMNIST_DATA_DIR=... python bench/ensemble_champion.py NAME [--storage-path results] [--up-to 5]

Loads the best checkpoint of each of the search's leading trials (best first, by the search's --metric), scores
each on the search's validation split and on the test split, and marks those whose average the search keeps
(`tuning.champion.evaluator.greedy_members`, on validation only); then that average's scores. The test scores are
printed to measure the choice, which never sees them.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
from pathlib import Path

import numpy as np
from ray import tune

from fmnist.data import load
from fmnist.evaluation import predict, score
from tuning.champion.evaluator import greedy_members
from tuning.driver import training_splits
from tuning.optimization.outcome import leaders
from tuning.optimization.trainable import load_checkpoint_model
from tuning.saved_search import SavedSearch
from tuning.settings import SearchSettings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return score(probabilities, labels).metrics.accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="the search's --name")
    parser.add_argument("--storage-path", type=Path, default=Path(SearchSettings.storage_path))
    parser.add_argument("--up-to", type=int, default=5, help="largest number of trials to average")
    options = parser.parse_args()
    experiment_dir = (options.storage_path / options.name).resolve()
    if not experiment_dir.is_dir():
        parser.error(f"{experiment_dir}: no such search")
    settings = SavedSearch.load(str(experiment_dir)).settings
    dataset = load(settings.data_dir)
    _, validation = training_splits(dataset.train, settings)
    results = tune.ResultGrid(tune.ExperimentAnalysis(str(experiment_dir)))
    ranked = leaders(results, settings.metric, settings.mode, options.up_to)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # predict's retracing notes for each new model
    validation_probabilities, test_probabilities, member_seconds = [], [], []
    for leader in ranked:
        started = time.perf_counter()
        model = load_checkpoint_model(leader.checkpoint)
        validation_probabilities.append(predict(model, validation))
        member_seconds.append(time.perf_counter() - started)
        test_probabilities.append(predict(model, dataset.test))
    picked, _ = greedy_members(validation_probabilities, validation.labels, settings.metric)
    print(f"{options.name}: its leading trials by {settings.metric}; the search averages those marked")
    print(f"{'trial':>10}  {'val':>8}  {'test':>8}")
    for index, (leader, its_validation, its_test) in enumerate(zip(ranked, validation_probabilities, test_probabilities,
                                                                    strict=True)):
        mark = "  <- averaged" if index in picked else ""
        print(f"{leader.trial_id:>10}  {accuracy(its_validation, validation.labels):>8.2%}  "
              f"{accuracy(its_test, dataset.test.labels):>8.2%}{mark}")
    averaged = [np.mean([probabilities[index] for index in picked], axis=0)
                for probabilities in (validation_probabilities, test_probabilities)]
    print(f"{'average':>10}  {accuracy(averaged[0], validation.labels):>8.2%}  {accuracy(averaged[1], dataset.test.labels):>8.2%}")
    print(f"each trial costs the choice {statistics.median(member_seconds):.2f} s (median: load its checkpoint, "
          f"predict {len(validation):,} validation images)")


if __name__ == "__main__":
    main()
