"""Packing trials on a node's cores: one trial on all of them against one trial a core, all at once.

Usage: python bench/trial_packing.py [--images 10800] [--epochs 2] [DATA_DIR]

For each layout of the CNN, in the precision `mixed_precision: auto` trains in on this host, in one run: a Keras `fit`
on every core (what `--cpus-per-trial` of a whole node does), then one `fit` a core, all started together and timed
from the same moment after their warm-up epochs (what `--cpus-per-trial 1` does). Prints images/s of each and the
ratio of the packed trials' sum to the one trial's; writes docs/results/trial_packing.json.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import results

from fmnist.config import AUTO, LAYOUTS
from fmnist.locations import DATA_DIR_HELP, resolve_data_dir


def measure_one(data_dir: str, layout: str, images: int, epochs: int, threads: int,
                barrier: Any, answers: Any) -> None:
    """In a process of its own: one fit of `layout` on `threads` threads; its images/s goes to `answers`."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
    from training_throughput import Variant, images_per_second

    from fmnist.data import load, stratified_subset
    from fmnist.model import ModelConfig, one_hot, uses_bfloat16

    train = stratified_subset(load(data_dir, download=False).train, images, seed=0)
    variant = Variant(layout, mixed_precision=uses_bfloat16(ModelConfig(mixed_precision=AUTO)), layout=layout)
    rate, _ = images_per_second(variant, train.images, one_hot(train.labels), epochs, warmed_up=barrier.wait)
    answers.put(rate)


def run_together(options: argparse.Namespace, layout: str, processes: int, threads: int) -> list[float]:
    """`processes` fits of `threads` threads each, timed from the moment all have warmed up."""
    context = multiprocessing.get_context("spawn")
    barrier, answers = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=measure_one, args=(options.data_dir, layout, options.images, options.epochs,
                                                          threads, barrier, answers)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    rates = [answers.get() for _ in workers]
    for worker in workers:
        worker.join()
    return rates


def result_lines(figures: dict[str, Any]) -> list[str]:
    cores = figures["cores"]
    lines = [f"{figures['images']} images, {figures['epochs']} timed epochs, {figures['precision']}",
             f"{'layout':<16} {f'1 trial x {cores} threads':>20} {f'{cores} trials x 1 thread':>34} {'packed / one':>13}"]
    for row in figures["layouts"]:
        packed = " + ".join(f"{rate:,.0f}" for rate in row["one_thread_each"])
        lines.append(f"{row['layout']:<16} {row['all_cores']:>20,.0f} {packed:>34} {row['packed_over_one']:>13.2f}")
    return lines


def markdown_table(record: dict[str, Any]) -> str:
    """The docs' block of a packing results file, as the run printed it (`--table FILE`)."""
    return "\n".join([f"$ {record['command']}", *result_lines(record["figures"])])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", nargs="?", default=str(resolve_data_dir()), help=DATA_DIR_HELP)
    parser.add_argument("--images", type=int, default=10_800, help="training images per epoch (a trial's share)")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs, after one warm-up epoch")
    results.add_table_option(parser)
    options = parser.parse_args()
    if options.table:
        results.print_table(options.table, markdown_table)
        return 0
    from fmnist.model import ModelConfig, uses_bfloat16

    cores = os.cpu_count() or 1
    figures: dict[str, Any] = {"images": options.images, "epochs": options.epochs, "cores": cores, "layouts": [],
                               "precision": "mixed bfloat16" if uses_bfloat16(ModelConfig(mixed_precision=AUTO)) else "float32"}
    for layout in LAYOUTS:
        (whole,) = run_together(options, layout, 1, cores)
        packed = run_together(options, layout, cores, 1)
        figures["layouts"].append({"layout": layout, "all_cores": whole, "one_thread_each": packed,
                                   "packed_over_one": sum(packed) / whole})
    checks = [(f"{row['layout']}: {cores} one-core trials train more images/s than one trial on {cores} cores",
               row["packed_over_one"] > 1) for row in figures["layouts"]]
    print("\n".join(result_lines(figures)))
    print(f"results: {results.write('trial_packing', figures, checks)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
