"""The champion of a finished search as the average of its 1, 2, ... leading trials: validation and test scores.

Usage: FMNIST_DATA_DIR=... python bench/ensemble_champion.py NAME [--storage-path results] [--up-to 5]

Loads the best checkpoint of each of the search's leading trials (best first, by the search's --metric), scores
the average of the first k of them on the search's validation split and on the test split, and marks the k the
search picks (`tuning.champion.evaluator.members_to_average`: the best on validation, the fewest on a tie). The test
scores are printed to measure the choice, which never sees them.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
from pathlib import Path

from ray import tune

from fmnist.data import load
from fmnist.ensemble import running_means
from fmnist.evaluation import predict, score
from tuning.champion.evaluator import members_to_average
from tuning.driver import training_splits
from tuning.optimization.outcome import leaders
from tuning.optimization.trainable import load_checkpoint_model
from tuning.saved_search import SavedSearch
from tuning.settings import SearchSettings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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
    picked, _ = members_to_average(validation_probabilities, validation.labels, settings.metric)
    print(f"{options.name}: averages of its leading trials by {settings.metric} (the search picks {picked})")
    print(f"{'trials':>6}  {'last added':>10}  {'its val':>8}  {'its test':>8}  {'average val':>11}  {'average test':>12}")
    rows = zip(ranked, validation_probabilities, test_probabilities, running_means(validation_probabilities),
               running_means(test_probabilities), strict=True)
    for count, (leader, its_validation, its_test, validation_mean, test_mean) in enumerate(rows, start=1):
        accuracies = [score(probabilities, labels).metrics.accuracy for probabilities, labels in (
            (its_validation, validation.labels), (its_test, dataset.test.labels),
            (validation_mean, validation.labels), (test_mean, dataset.test.labels),
        )]
        mark = "  <- picked" if count == picked else ""
        print(f"{count:>6}  {leader.trial_id:>10}  {accuracies[0]:>8.2%}  {accuracies[1]:>8.2%}  {accuracies[2]:>11.2%}  "
              f"{accuracies[3]:>12.2%}{mark}")
    print(f"each trial costs the choice {statistics.median(member_seconds):.2f} s (median: load its checkpoint, "
          f"predict {len(validation):,} validation images)")


if __name__ == "__main__":
    main()
