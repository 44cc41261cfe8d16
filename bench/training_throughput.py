"""Training throughput of the original CNN in bare Keras, each way of running it, against the machine's limit.

Usage: python bench/training_throughput.py [--images 10800] [--epochs 2] [--threads N] [--only fp32] [DATA_DIR]

In one run, on the same real images: the machine's measured matmul rate (fp32 and bf16, the roof),
then one Keras `fit` per variant (the original or the full-resolution layout, fp32 or mixed bf16, XLA or not, numpy
or tf.data input, batch size), each after a warm-up epoch that pays for tracing. Prints images/s, the ratio to the
plain fp32 fit of the original layout, each layout's training FLOP per image and the share of the measured roof each
variant reaches. Writes docs/results/<--results>.json.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import results
import tensorflow as tf

from fmnist.config import LAYOUTS
from fmnist.data import load, stratified_subset
from fmnist.locations import DATA_DIR_HELP, resolve_data_dir
from fmnist.model import ModelConfig, build, one_hot


@dataclass(frozen=True)
class Variant:
    name: str
    mixed_precision: bool = False
    jit_compile: bool = False
    tf_data: bool = False
    batch_size: int = 128
    layout: str = "original"


VARIANTS = (
    Variant("fp32, numpy (today)"),
    Variant("fp32, tf.data", tf_data=True),
    Variant("fp32, XLA", jit_compile=True),
    Variant("bf16, numpy", mixed_precision=True),
    Variant("bf16, XLA", mixed_precision=True, jit_compile=True),
    Variant("bf16, XLA, tf.data", mixed_precision=True, jit_compile=True, tf_data=True),
    Variant("bf16, XLA, batch 256", mixed_precision=True, jit_compile=True, batch_size=256),
    Variant("fp32, XLA, batch 256", jit_compile=True, batch_size=256),
    Variant("full-res fp32, numpy", layout="full_resolution"),
    Variant("full-res bf16, numpy", mixed_precision=True, layout="full_resolution"),
)


def matmul_rate(dtype: tf.DType, size: int = 2048, repeats: int = 20) -> float:
    """GFLOP/s of a large square matmul: the most this machine's cores give TensorFlow in `dtype`."""
    a = tf.random.normal((size, size), dtype=tf.float32)
    a = tf.cast(a, dtype)

    @tf.function(jit_compile=True)
    def product(x: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(tf.cast(tf.matmul(x, x), tf.float32))

    product(a).numpy()
    started = time.perf_counter()
    for _ in range(repeats):
        product(a).numpy()
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e9


def training_flop_per_image(model: keras.Model) -> float:
    """Multiply-adds of the convolutions and dense layers, times 2 (FLOP), times 3 (forward and backward)."""
    forward = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, channels_out = layer.output.shape
            kernel_height, kernel_width, channels_in, _ = layer.kernel.shape
            forward += height * width * channels_out * kernel_height * kernel_width * channels_in
        elif isinstance(layer, keras.layers.Dense):
            inputs, outputs = layer.kernel.shape
            forward += inputs * outputs
    return 2 * 3 * forward


def images_per_second(variant: Variant, images: np.ndarray, targets: np.ndarray, epochs: int,
                      warmed_up: Callable[[], object] = lambda: None) -> tuple[float, float]:
    """Throughput of `fit` after a warm-up epoch (then `warmed_up()`, which may wait for others), and the training
    accuracy it reached."""
    keras.utils.set_random_seed(0)
    model = build(ModelConfig(mixed_precision=variant.mixed_precision, batch_size=variant.batch_size, layout=variant.layout))
    model.jit_compile = variant.jit_compile
    if variant.tf_data:
        dataset = tf.data.Dataset.from_tensor_slices((images, targets)).batch(variant.batch_size).prefetch(2)
        fit = lambda n: model.fit(dataset, epochs=n, verbose=0)
    else:
        fit = lambda n: model.fit(images, targets, batch_size=variant.batch_size, epochs=n, verbose=0)
    fit(1)
    warmed_up()
    started = time.perf_counter()
    history = fit(epochs)
    elapsed = time.perf_counter() - started
    return len(images) * epochs / elapsed, float(history.history["accuracy"][-1])


def heading_lines(figures: dict[str, Any]) -> list[str]:
    """What a run measured before its variants: the data, the roof and each layout's work per image."""
    roof, flop = figures["roof_gflops"], figures["training_mflop_per_image"]
    return [f"{figures['images']} images, {figures['epochs']} timed epochs, {figures['threads']} threads",
            f"roof: matmul {roof['fp32']:.0f} GFLOP/s fp32, {roof['bf16']:.0f} GFLOP/s bf16; training MFLOP per image: "
            + ", ".join(f"{layout} {value:.1f}" for layout, value in flop.items()),
            f"{'variant':<24} {'images/s':>9} {'x today':>8} {'% roof':>7} {'train acc':>9}"]


def variant_line(row: dict[str, Any]) -> str:
    """One variant's throughput, its ratio to the first variant run, its share of the roof and its training accuracy."""
    return (f"{row['variant']:<24} {row['images_per_s']:>9,.0f} {row['ratio']:>8.2f} {100 * row['share_of_roof']:>6.1f}% "
            f"{row['train_accuracy']:>9.3f}")


def markdown_table(record: dict[str, Any]) -> str:
    """The docs' block of a throughput results file, as the run printed it. docs/benchmarks.md holds it as printed
    (`--table FILE`), and a fast test holds the two together."""
    figures = record["figures"]
    return "\n".join([f"$ {record['command']}", *heading_lines(figures), *map(variant_line, figures["variants"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", nargs="?", default=str(resolve_data_dir()), help=DATA_DIR_HELP)
    parser.add_argument("--images", type=int, default=10_800, help="training images per epoch (a trial's share)")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per variant, after one warm-up epoch")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="TensorFlow intra-op threads")
    parser.add_argument("--only", default="", help="run only the variants whose name contains this text")
    parser.add_argument("--results", default="training_throughput",
                        help="the results file's name in docs/results/ (default: training_throughput)")
    results.add_table_option(parser)
    options = parser.parse_args()
    if options.table:
        results.print_table(options.table, markdown_table)
        return
    tf.config.threading.set_intra_op_parallelism_threads(options.threads)
    tf.config.threading.set_inter_op_parallelism_threads(min(options.threads, 2))

    train = stratified_subset(load(options.data_dir, download=False).train, options.images, seed=0)
    images, targets = train.images, one_hot(train.labels)
    roof_fp32, roof_bf16 = matmul_rate(tf.float32), matmul_rate(tf.bfloat16)
    flop = {layout: training_flop_per_image(build(ModelConfig(layout=layout))) for layout in LAYOUTS}
    figures: dict[str, Any] = {
        "images": len(images), "epochs": options.epochs, "threads": options.threads,
        "roof_gflops": {"fp32": roof_fp32, "bf16": roof_bf16},
        "training_mflop_per_image": {layout: value / 1e6 for layout, value in flop.items()}, "variants": []}
    print("\n".join(heading_lines(figures)))
    reference = None
    for variant in (variant for variant in VARIANTS if options.only in variant.name):
        rate, accuracy = images_per_second(variant, images, targets, options.epochs)
        reference = reference or rate
        roof = roof_bf16 if variant.mixed_precision else roof_fp32
        row = {"variant": variant.name, "layout": variant.layout, "images_per_s": rate, "ratio": rate / reference,
               "share_of_roof": rate * flop[variant.layout] / (roof * 1e9), "train_accuracy": accuracy}
        figures["variants"].append(row)
        print(variant_line(row), flush=True)
    print(f"results: {results.write(options.results, figures, [])}")


if __name__ == "__main__":
    main()
