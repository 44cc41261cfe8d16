"""The CNN as a function of a config; the default config is the original project's layout.

Example:
    >>> model = build(ModelConfig(filters_1=64, learning_rate=3e-4))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Literal

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the logs

import keras  # noqa: E402
import numpy as np  # noqa: E402

from fmnist.readers import IMAGE_SIDE, NUM_CLASSES  # noqa: E402

Optimizer = Literal["adam", "adamw", "sgd", "rmsprop"]
OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "sgd", "rmsprop")


@dataclass(frozen=True)
class ModelConfig:
    """Everything that shapes and trains the CNN; defaults reproduce the original notebook."""

    filters_1: int = 32
    filters_2: int = 64
    filters_3: int = 128
    dropout_1: float = 0.25
    dropout_2: float = 0.25
    dropout_3: float = 0.4
    dense_units: int = 128
    dense_dropout: float = 0.3
    learning_rate: float = 1e-3
    batch_size: int = 128
    optimizer: Optimizer = "adam"
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    augment: bool = False
    mixed_precision: bool = False

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """Build a config from a dict (e.g. a Tune trial's config), ignoring keys it does not know."""
        known = {field.name for field in dataclasses.fields(cls)}
        config = cls(**{key: value for key, value in values.items() if key in known})
        config.validate()
        return config

    def validate(self) -> None:
        """Raise ValueError naming the first setting that cannot build a model."""
        for name in ("filters_1", "filters_2", "filters_3", "dense_units", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for name in ("dropout_1", "dropout_2", "dropout_3", "dense_dropout", "label_smoothing"):
            if not 0.0 <= float(getattr(self, name)) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not float(self.learning_rate) > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if float(self.weight_decay) < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")


def build(config: ModelConfig = ModelConfig()) -> keras.Model:
    """Build and compile the CNN. Input: raw pixels (N, 28, 28) in 0..255; output: class probabilities."""
    config.validate()
    dtype = "mixed_bfloat16" if config.mixed_precision else None
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
        optimizer=_optimizer(config),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=float(config.label_smoothing)),
        metrics=["accuracy"],
    )
    return model


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
