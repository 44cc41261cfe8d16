"""The CNN as a function of a config; the default config is the original project's layout.

Example:
    >>> model = build(ModelConfig(filters_1=64, learning_rate=3e-4))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from fmnist.config import AUTO, ModelConfig
from fmnist.readers import IMAGE_SIDE, NUM_CLASSES

__all__ = ["ModelConfig", "bfloat16_is_native", "build", "one_hot", "uses_bfloat16"]
BFLOAT16_CPU_FLAGS = ("amx_bf16",)
"""CPUs on which mixed bfloat16 trains this CNN clearly faster than float32. AVX-512 BF16 alone is not one:
measured 0.97-1.40x in one-run pairs, 0.97x over 4 full epochs (docs/benchmarks.md)."""


def build(config: ModelConfig = ModelConfig(), training_steps: int | None = None) -> keras.Model:
    """Build and compile the CNN. Input: raw pixels (N, 28, 28) in 0..255; output: class probabilities.

    `training_steps` (batches in the whole planned training) sets the length of a cosine schedule.
    """
    config.validate()
    if config.lr_schedule == "cosine" and not training_steps:
        raise ValueError("lr_schedule cosine needs training_steps, the number of batches it decays over")
    dtype = "mixed_bfloat16" if uses_bfloat16(config) else None
    inputs = keras.Input(shape=(IMAGE_SIDE, IMAGE_SIDE), name="pixels")
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    x = keras.layers.Reshape((IMAGE_SIDE, IMAGE_SIDE, 1))(x)
    if config.augment:
        x = keras.layers.RandomFlip("horizontal")(x)
        x = keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant")(x)
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
    x = keras.layers.Dropout(float(config.dropout_3), dtype=dtype)(x)
    x = keras.layers.Flatten(dtype=dtype)(x)
    x = keras.layers.BatchNormalization(dtype=dtype)(x)
    x = keras.layers.Dense(int(config.dense_units), activation="relu", dtype=dtype)(x)
    x = keras.layers.Dropout(float(config.dense_dropout), dtype=dtype)(x)
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="probabilities")(x)
    model = keras.Model(inputs, outputs, name="fmnist_cnn")
    model.compile(
        optimizer=_optimizer(config, training_steps),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=float(config.label_smoothing)),
        metrics=["accuracy"],
    )
    return model


def uses_bfloat16(config: ModelConfig) -> bool:
    """Whether `config` trains in mixed bfloat16 on this machine."""
    return config.mixed_precision is True or (config.mixed_precision == AUTO and bfloat16_is_native())


def bfloat16_is_native() -> bool:
    """Whether this CPU has AMX for bfloat16 (its flag in /proc/cpuinfo)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    return any(flag in flags for flag in BFLOAT16_CPU_FLAGS)


def one_hot(labels: np.ndarray) -> np.ndarray:
    """Integer labels (N,) to float32 one-hot targets (N, 10), as the loss expects."""
    return np.eye(NUM_CLASSES, dtype=np.float32)[labels]


def _optimizer(config: ModelConfig, training_steps: int | None) -> keras.optimizers.Optimizer:
    decay = float(config.weight_decay) or None
    rate: float | keras.optimizers.schedules.LearningRateSchedule = float(config.learning_rate)
    if config.lr_schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(float(config.learning_rate), decay_steps=int(training_steps or 1))
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=rate, weight_decay=decay)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=rate, weight_decay=decay or 0.004)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=rate, momentum=0.9, nesterov=True, weight_decay=decay)
    return keras.optimizers.RMSprop(learning_rate=rate, weight_decay=decay)
