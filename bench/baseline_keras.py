"""The number every search must beat: one configuration trained by plain Keras, as the notebook did.

Usage: python bench/baseline_keras.py [--epochs 20] [--config '{"layout": "full_resolution"}'] [--holdout 0.1]
                                      [--results NAME] [DATA_DIR]

Trains `ModelConfig()` (or the config given as JSON) with `model.fit`, one epoch at a time over a schedule planned
for `--epochs`, and after each epoch prints the wall time spent training so far, the accuracy on the search's
validation images (with `--holdout`, which trains on what a search trial trains on: the same split, without its
validation images) and on the test set: the configuration's accuracy at every budget. Nothing is chosen by the test
accuracy; it is measured to compare with a search's champion. Writes docs/results/NAME.json (`--results`).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import results

from fmnist.data import held_out_split, load
from fmnist.evaluation import evaluate
from fmnist.locations import DATA_DIR_HELP, resolve_data_dir
from fmnist.model import ModelConfig, build, learning_rate_callbacks, one_hot


def epoch_line(row: dict[str, Any]) -> str:
    """One epoch's training time so far, throughput and accuracies, as the run prints it."""
    validation = "-" if row["validation_accuracy"] is None else f"{row['validation_accuracy']:.4f}"
    return f"{row['epoch']:>5} {row['trained_s']:>8.0f} {row['images_per_s']:>9,.0f} {validation:>9} {row['test_accuracy']:>9.4f}"


def heading_lines(figures: dict[str, Any]) -> list[str]:
    """What was trained, on how many images, then the columns."""
    return [(f"plain Keras fit of {json.dumps(figures['config'])}, {figures['training_images']} training images, "
            f"{figures['validation_images']} validation, {figures['test_images']} test"),
            f"{'epoch':>5} {'train s':>8} {'images/s':>9} {'val acc':>9} {'test acc':>9}"]


def markdown_table(record: dict[str, Any]) -> str:
    """The docs' block of a baseline results file, as the run printed it. docs/benchmarks.md holds it as printed
    (`--table FILE`), and a fast test holds the two together."""
    figures = record["figures"]
    return "\n".join([f"$ {record['command']}", *heading_lines(figures), *map(epoch_line, figures["epochs"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", nargs="?", default=str(resolve_data_dir()), help=DATA_DIR_HELP)
    parser.add_argument("--epochs", type=int, default=20, help="epochs, the length of the learning-rate schedule")
    parser.add_argument("--config", default="{}", help="ModelConfig fields as JSON (default: the original CNN)")
    parser.add_argument("--holdout", type=float, default=0.0,
                        help="leave out this fraction of the training file as the search's validation images")
    parser.add_argument("--results", default="baseline_keras", help="write docs/results/RESULTS.json")
    results.add_table_option(parser)
    options = parser.parse_args()
    if options.table:
        results.print_table(options.table, markdown_table)
        return
    if options.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {options.epochs}")
    if not 0.0 <= options.holdout < 1.0:
        parser.error(f"--holdout must be in [0, 1), got {options.holdout:g}")
    try:
        config = ModelConfig.from_dict(json.loads(options.config))
    except (ValueError, TypeError) as error:
        parser.error(f"--config: {error}")
    dataset = load(options.data_dir, download=False)
    train, validation = held_out_split(dataset.train, options.holdout) if options.holdout else (dataset.train, None)
    keras.utils.set_random_seed(0)
    model = build(config)
    targets = one_hot(train.labels)
    figures: dict[str, Any] = {"config": json.loads(options.config), "training_images": len(train),
                               "validation_images": len(validation) if validation else 0,
                               "test_images": len(dataset.test), "epochs": []}
    print("\n".join(heading_lines(figures)), flush=True)
    trained_s = 0.0
    for epoch in range(1, options.epochs + 1):
        started = time.perf_counter()
        model.fit(train.images, targets, batch_size=config.batch_size, initial_epoch=epoch - 1, epochs=epoch, verbose=0,
                  callbacks=learning_rate_callbacks(config, options.epochs))
        elapsed = time.perf_counter() - started
        trained_s += elapsed
        row = {"epoch": epoch, "trained_s": trained_s, "images_per_s": len(train) / elapsed,
               "validation_accuracy": evaluate(model, validation).metrics.accuracy if validation else None,
               "test_accuracy": evaluate(model, dataset.test).metrics.accuracy}
        figures["epochs"].append(row)
        print(epoch_line(row), flush=True)
    print(f"results: {results.write(options.results, figures, [])}")


if __name__ == "__main__":
    main()
