"""The CNN as a function of a config; the default config is the original project's layout.

Example:
    >>> config = ModelConfig(filters_1=64, lr_schedule="cosine")
    >>> model = build(config)  # doctest: +SKIP
    >>> model.fit(images, targets, epochs=20, callbacks=learning_rate_callbacks(config, epochs=20))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from fmnist.config import AUTO, ModelConfig
from fmnist.readers import IMAGE_SIDE, NUM_CLASSES

__all__ = ["ModelConfig", "bfloat16_is_native", "build", "cosine_rate", "learning_rate_callbacks", "one_hot", "uses_bfloat16"]
BFLOAT16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
"""CPUs on which mixed bfloat16 trains this CNN faster than float32: those with bfloat16 arithmetic, AMX or AVX-512 BF16
(docs/benchmarks.md, "Training throughput")."""


def build(config: ModelConfig = ModelConfig()) -> keras.Model:
    """Build and compile the CNN. Input: raw pixels (N, 28, 28) in 0..255; output: class probabilities.

    The optimizer starts at `config.learning_rate`; `learning_rate_callbacks` applies the schedule.
    """
    config.validate()
    dtype = "mixed_bfloat16" if uses_bfloat16(config) else None
    inputs = keras.Input(shape=(IMAGE_SIDE, IMAGE_SIDE), name="pixels")
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    x = keras.layers.Reshape((IMAGE_SIDE, IMAGE_SIDE, 1))(x)
    if config.augment:
        x = keras.layers.RandomFlip("horizontal")(x)
        x = keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant")(x)
    x = (_full_resolution_features if config.layout == "full_resolution" else _original_features)(x, config, dtype)
    x = keras.layers.Flatten(dtype=dtype)(x)
    x = keras.layers.BatchNormalization(dtype=dtype)(x)
    x = keras.layers.Dense(int(config.dense_units), activation="relu", dtype=dtype)(x)
    x = keras.layers.Dropout(float(config.dense_dropout), dtype=dtype)(x)
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="probabilities")(x)
    model = keras.Model(inputs, outputs, name="fmnist_cnn")
    model.compile(
        optimizer=_optimizer(config),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=float(config.label_smoothing)),
        metrics=["accuracy"],
    )
    return model


def _original_features(x: keras.KerasTensor, config: ModelConfig, dtype: str | None) -> keras.KerasTensor:
    """The notebook's layout: three valid-padded 3x3 convolutions (28 -> 26 -> 13 -> 11 -> 5 -> 3 pixels a side)."""
    x = keras.layers.Conv2D(int(config.filters_1), 3, activation="relu", kernel_initializer="he_normal", dtype=dtype)(x)
    x = keras.layers.BatchNormalization(dtype=dtype)(x)
    x = keras.layers.MaxPooling2D(2, dtype=dtype)(x)
    x = keras.layers.Dropout(float(config.dropout_1), dtype=dtype)(x)
    x = keras.layers.BatchNormalization(dtype=dtype)(x)
    x = keras.layers.Conv2D(int(config.filters_2), 3, activation="relu", dtype=dtype)(x)
    x = keras.layers.MaxPooling2D(2, dtype=dtype)(x)
    x = keras.layers.Dropout(float(config.dropout_2), dtype=dtype)(x)
    x = keras.layers.BatchNormalization(dtype=dtype)(x)
    x = keras.layers.Conv2D(int(config.filters_3), 3, activation="relu", dtype=dtype)(x)
    return keras.layers.Dropout(float(config.dropout_3), dtype=dtype)(x)


def _full_resolution_features(x: keras.KerasTensor, config: ModelConfig, dtype: str | None) -> keras.KerasTensor:
    """Three blocks of two same-padded 3x3 convolutions, each with batch normalisation, then 2x2 pooling and dropout
    (28 -> 14 -> 7 -> 3 pixels a side): the first block works on every pixel."""
    blocks = ((config.filters_1, config.dropout_1), (config.filters_2, config.dropout_2), (config.filters_3, config.dropout_3))
    for filters, dropout in blocks:
        for _ in range(2):
            x = keras.layers.Conv2D(int(filters), 3, padding="same", use_bias=False, kernel_initializer="he_normal",
                                    dtype=dtype)(x)
            x = keras.layers.BatchNormalization(dtype=dtype)(x)
            x = keras.layers.Activation("relu", dtype=dtype)(x)
        x = keras.layers.MaxPooling2D(2, dtype=dtype)(x)
        x = keras.layers.Dropout(float(dropout), dtype=dtype)(x)
    return x


def uses_bfloat16(config: ModelConfig) -> bool:
    """Whether `config` trains in mixed bfloat16 on this machine."""
    return config.mixed_precision is True or (config.mixed_precision == AUTO and bfloat16_is_native())


def bfloat16_is_native() -> bool:
    """Whether this CPU computes in bfloat16 (AMX or AVX-512 BF16: a flag of `BFLOAT16_CPU_FLAGS` in /proc/cpuinfo)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    return any(flag in flags for flag in BFLOAT16_CPU_FLAGS)


def learning_rate_callbacks(config: ModelConfig, epochs: int) -> list[keras.callbacks.Callback]:
    """The Keras callbacks that apply `config.lr_schedule` to a training planned for `epochs` epochs.

    Cosine: Keras's `LearningRateScheduler` sets each epoch's rate by `cosine_rate`. Fit with `initial_epoch`
    when training an epoch at a time, so that the scheduler knows which epoch it is.
    """
    if config.lr_schedule != "cosine":
        return []
    base_rate = float(config.learning_rate)
    return [keras.callbacks.LearningRateScheduler(lambda epoch, _rate: cosine_rate(base_rate, epoch, epochs))]


def cosine_rate(base_rate: float, epoch: int, epochs: int) -> float:
    """The learning rate of `epoch` (from 0) in Keras's `CosineDecay` from `base_rate` to 0 over `epochs` epochs.

    Each epoch takes the curve's value at its middle; epochs past the plan keep the last epoch's rate.
    """
    schedule = keras.optimizers.schedules.CosineDecay(base_rate, decay_steps=epochs)
    return float(keras.ops.convert_to_numpy(schedule(min(epoch, epochs - 1) + 0.5)))


def one_hot(labels: np.ndarray) -> np.ndarray:
    """Integer labels (N,) to float32 one-hot targets (N, 10), as the loss expects."""
    return np.eye(NUM_CLASSES, dtype=np.float32)[labels]


def _optimizer(config: ModelConfig) -> keras.optimizers.Optimizer:
    decay = float(config.weight_decay) or None
    rate = float(config.learning_rate)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=rate, weight_decay=decay)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=rate, weight_decay=decay or 0.004)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=rate, momentum=0.9, nesterov=True, weight_decay=decay)
    return keras.optimizers.RMSprop(learning_rate=rate, weight_decay=decay)
