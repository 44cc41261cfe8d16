"""The number every search must beat: the original CNN trained by plain Keras, as the notebook did.

Usage: python bench/baseline_keras.py [--epochs 20] [--config '{"mixed_precision": true}'] [--holdout 0.1] [DATA_DIR]

Trains `ModelConfig()` (or the config given as JSON) on the whole training file with `model.fit`, one
epoch at a time, and after each epoch prints the wall time spent training so far and the test
accuracy: the baseline's accuracy at every budget, and its best over the run. `--holdout 0.1` trains on
what a search trial trains on (the same seeded split, without its validation images), so that two runs
side by side measure what a refit on train + validation gains.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras

from fmnist.data import load, stratified_split
from fmnist.evaluation import evaluate
from fmnist.locations import DATA_DIR_HELP, resolve_data_dir
from fmnist.model import ModelConfig, build, learning_rate_callbacks, one_hot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", nargs="?", default=str(resolve_data_dir()), help=DATA_DIR_HELP)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--config", default="{}", help="ModelConfig fields as JSON (default: the original CNN)")
    parser.add_argument("--holdout", type=float, default=0.0,
                        help="leave out this fraction of the training file, as a search's validation split (seed 0)")
    options = parser.parse_args()
    dataset = load(options.data_dir, download=False)
    train = stratified_split(dataset.train, options.holdout, seed=0)[0] if options.holdout else dataset.train
    config = ModelConfig.from_dict(json.loads(options.config))
    keras.utils.set_random_seed(0)
    model = build(config)
    targets = one_hot(train.labels)
    print(f"plain Keras fit of {config}, {len(train)} training images, test set of {len(dataset.test)}")
    print(f"{'epoch':>5} {'train s':>8} {'images/s':>9} {'test acc':>9}")
    trained_s, best = 0.0, (0.0, 0)
    for epoch in range(1, options.epochs + 1):
        started = time.perf_counter()
        model.fit(train.images, targets, batch_size=config.batch_size, initial_epoch=epoch - 1, epochs=epoch, verbose=0,
                  callbacks=learning_rate_callbacks(config, options.epochs))
        elapsed = time.perf_counter() - started
        trained_s += elapsed
        accuracy = evaluate(model, dataset.test).metrics.accuracy
        best = max(best, (accuracy, epoch))
        print(f"{epoch:>5} {trained_s:>8.0f} {len(train) / elapsed:>9,.0f} {accuracy:>9.4f}", flush=True)
    print(f"best test accuracy {best[0]:.4f} at epoch {best[1]}; last {accuracy:.4f} after {trained_s:.0f} s of training")


if __name__ == "__main__":
    main()
