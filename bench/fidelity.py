"""How well a cheap fidelity ranks configurations as the full one does: the measurement a screening stage rests on.

Usage (one process, alone on the machine):
    python bench/fidelity.py [--configs 12] [--subset 0.333] [--low-epochs 3] [--high-epochs 3] [--seed 0]
    python bench/fidelity.py --table docs/results/fidelity_33pct_2ep.json    # the docs' table of a results file

Draws --configs configurations of the default space: its points to evaluate first, then Optuna's RandomSampler.
Trains each twice with plain Keras on the search's own split (the same held-out validation images): the cheap
fidelity on a class-balanced --subset of the training images for --low-epochs, the full fidelity on all of them for
--high-epochs, each a complete schedule (a cosine config's rate reaches its end). Prints each configuration's
validation accuracy at both fidelities and their seconds, then Spearman's and Kendall's rank correlations between
the two rankings and whether the cheap fidelity's best three hold the full one's best. Writes
docs/results/fidelity_<subset %>pct_<low epochs>ep.json. Acceptance: Spearman's rho >= 0.7, the level at which a screen keeps the best
configurations among those it promotes.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import optuna
import results
from scipy import stats

from fmnist.config import ModelConfig
from fmnist.data import Split, held_out_split, load, stratified_subset
from tuning.optimization.space import SearchSpace, load_space
from tuning.settings import SearchSettings

SPEARMAN_TARGET = 0.7
TOP = 3


def configurations(space: SearchSpace, count: int, seed: int) -> list[dict[str, Any]]:
    """The space's points to evaluate, then random draws of the space, `count` in all."""
    chosen = space.first_trials()[:count]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    distributions = space.optuna_distributions()
    while len(chosen) < count:
        trial = study.ask(distributions)
        chosen.append(trial.params)
        study.tell(trial, 0.0)
    return chosen


def trained_accuracy(config: ModelConfig, train: Split, validation: Split, epochs: int) -> tuple[float, float]:
    """Validation accuracy after a complete `epochs`-epoch schedule on `train`, and the seconds it took."""
    from fmnist.evaluation import evaluate  # Keras: only where a model trains, so the docs' table reads without it
    from fmnist.model import build, learning_rate_callbacks, one_hot

    started = time.perf_counter()
    model = build(config)
    model.fit(train.images, one_hot(train.labels), batch_size=config.batch_size, epochs=epochs, verbose=0,
              callbacks=learning_rate_callbacks(config, epochs))
    return evaluate(model, validation).metrics.accuracy, time.perf_counter() - started


def markdown_table(record: dict[str, Any]) -> str:
    """The docs' table of a fidelity results file: each configuration's accuracy at both fidelities, then the rank
    correlations. docs/benchmarks.md holds it as printed (`--table FILE`), and a fast test holds the two together."""
    figures = record["figures"]
    lines = [(f"| config | {figures['subset_images']:,} images, {figures['low_epochs']} epochs | seconds | "
             f"{figures['training_images']:,} images, {figures['high_epochs']} epochs | seconds |"), "|---|---|---|---|---|"]
    lines += [f"| {index} | {row['low_accuracy']:.2%} | {row['low_s']:.0f} | {row['full_accuracy']:.2%} | {row['full_s']:.0f} |"
              for index, row in enumerate(figures["rows"])]
    lines += ["", (f"Spearman's rho {figures['spearman']:.2f}, Kendall's tau {figures['kendall']:.2f}; the full fidelity's best "
              f"{'is' if figures['best_full_in_cheap_top3'] else 'is not'} among the cheap fidelity's best {TOP}; the cheap "
              f"fidelity costs {figures['cost_share']:.0%} of the full one's time.")]
    return "\n".join(lines)


def full_fidelity_rows(path: Path | None, chosen: list[dict[str, Any]], training_images: int, high_epochs: int,
                       parser: argparse.ArgumentParser) -> list[dict[str, Any]]:
    """The rows of an earlier results file (`--full-from`) measured on these configurations, images and epochs."""
    if path is None:
        return []
    figures = json.loads(path.read_text())["figures"]
    earlier = [row["params"] for row in figures["rows"]]
    if earlier != chosen or (figures["training_images"], figures["high_epochs"]) != (training_images, high_epochs):
        parser.error(f"--full-from {path}: measured other configurations, training images or --high-epochs")
    return figures["rows"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", type=int, default=12, help="configurations to rank (at least 4)")
    parser.add_argument("--subset", type=float, default=1 / 3, help="the cheap fidelity's share of the training images")
    parser.add_argument("--low-epochs", type=int, default=3, help="the cheap fidelity's epochs")
    parser.add_argument("--high-epochs", type=int, default=3, help="the full fidelity's epochs")
    parser.add_argument("--train-size", type=int, default=None, help="the full fidelity's training images (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=os.environ.get("FMNIST_DATA_DIR"))
    parser.add_argument("--full-from", type=Path, help="take the full fidelity's accuracies and seconds from this "
                        "results file of the same configurations, seed and full fidelity, and train only the cheap one")
    results.add_table_option(parser)
    options = parser.parse_args()
    if options.table:
        results.print_table(options.table, markdown_table)
        return 0
    if options.configs < 4:
        parser.error(f"--configs must be at least 4, got {options.configs}")
    if not 0 < options.subset <= 1:
        parser.error(f"--subset must be above 0 and at most 1, got {options.subset:g}")
    if options.low_epochs < 1 or options.high_epochs < 1:
        parser.error("--low-epochs and --high-epochs must be at least 1")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    settings = SearchSettings(name="fidelity", seed=options.seed, train_size=options.train_size)
    # the search's own split (tuning.driver.training_splits)
    train, validation = held_out_split(load(options.data_dir).train, settings.validation_fraction, settings.train_size,
                                       seed=settings.seed)
    subset = stratified_subset(train, round(len(train) * options.subset), seed=options.seed)
    space = load_space(settings.config)
    rows = []
    chosen = configurations(space, options.configs, options.seed)
    measured_full = full_fidelity_rows(options.full_from, chosen, len(train), options.high_epochs, parser)
    print(f"{'config':>6} {'low acc':>8} {'low s':>7} {'full acc':>8} {'full s':>7}", flush=True)
    for index, params in enumerate(chosen):
        config = ModelConfig.from_dict({**space.fixed, **params})
        low, low_s = trained_accuracy(config, subset, validation, options.low_epochs)
        if measured_full:
            high, high_s = measured_full[index]["full_accuracy"], measured_full[index]["full_s"]
        else:
            high, high_s = trained_accuracy(config, train, validation, options.high_epochs)
        rows.append({"params": params, "low_accuracy": low, "low_s": low_s, "full_accuracy": high, "full_s": high_s})
        print(f"{index:>6} {low:>8.2%} {low_s:>7.1f} {high:>8.2%} {high_s:>7.1f}", flush=True)
    lows, highs = [row["low_accuracy"] for row in rows], [row["full_accuracy"] for row in rows]
    spearman = float(stats.spearmanr(lows, highs).statistic)
    kendall = float(stats.kendalltau(lows, highs).statistic)
    best_full = max(range(len(rows)), key=lambda index: highs[index])
    cheap_top = sorted(range(len(rows)), key=lambda index: lows[index], reverse=True)[:TOP]
    cost = sum(row["low_s"] for row in rows) / sum(row["full_s"] for row in rows)
    print(f"\nSpearman rho {spearman:.2f}, Kendall tau {kendall:.2f}; the full fidelity's best (config {best_full}) "
          f"{'is' if best_full in cheap_top else 'is not'} among the cheap fidelity's best {TOP}; "
          f"the cheap fidelity costs {cost:.0%} of the full one's time")
    figures = {"configs": len(rows), "training_images": len(train), "subset_images": len(subset),
               "validation_images": len(validation), "low_epochs": options.low_epochs, "high_epochs": options.high_epochs,
               "spearman": spearman, "kendall": kendall, "best_full_in_cheap_top3": best_full in cheap_top,
               "cost_share": cost, "rows": rows}
    checks = [(f"Spearman's rho >= {SPEARMAN_TARGET}", spearman >= SPEARMAN_TARGET),
              (f"the full fidelity's best is among the cheap fidelity's best {TOP}", best_full in cheap_top)]
    name = f"fidelity_{round(options.subset * 100)}pct_{options.low_epochs}ep"
    print(f"results: {results.write(name, figures, checks)}")
    return 0 if all(held for _, held in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
