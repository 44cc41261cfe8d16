"""The comparison's final-model step: the search's own, applied to any searcher's leading trials.

Usage: python bench/final_model.py DATA_DIR MODEL.keras...   (the trials' best models, best first)

Greedy forward selection on the search's validation split over the models (`tuning.champion.evaluator.greedy_members`,
what `python -m tuning.search` registers), then the test set once: the selection's accuracy and the best trial's alone.
Prints one JSON line: `test_accuracy`, `best_trial_test_accuracy`, `members` (places among the models, best first).
"""

from __future__ import annotations

import argparse
import json

import keras
import numpy as np

from fmnist.data import Split, load
from fmnist.evaluation import predict, score
from tuning.champion.evaluator import greedy_members
from tuning.driver import training_splits
from tuning.settings import SearchSettings

METRIC = "val_accuracy"


def accuracy(probabilities: np.ndarray, split: Split) -> float:
    """The accuracy of class `probabilities` on `split`, as the search scores its champion."""
    return score(probabilities, split.labels).metrics.accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir")
    parser.add_argument("models", nargs="+", help="each trial's best model (.keras), the best trial first")
    options = parser.parse_args()
    dataset = load(options.data_dir)
    _, validation = training_splits(dataset.train, SearchSettings(name="final-model"))  # the same for every --train-size
    models = [keras.models.load_model(path) for path in options.models]
    members, _ = greedy_members([predict(model, validation) for model in models], validation.labels, METRIC)
    test = [predict(model, dataset.test) for model in models]
    print(json.dumps({"test_accuracy": accuracy(np.mean([test[index] for index in members], axis=0), dataset.test),
                      "best_trial_test_accuracy": accuracy(test[0], dataset.test), "members": list(members)}))


if __name__ == "__main__":
    main()
