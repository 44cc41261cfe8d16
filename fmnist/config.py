"""The CNN's settings: its layout and how it trains. Light to import (no Keras): the search space checks values against it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

Optimizer = Literal["adam", "adamw", "sgd", "rmsprop"]
OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "sgd", "rmsprop")
LearningRateSchedule = Literal["constant", "cosine"]
LR_SCHEDULES: tuple[str, ...] = ("constant", "cosine")
Layout = Literal["original", "full_resolution"]
LAYOUTS: tuple[str, ...] = ("original", "full_resolution")
"""`original`: the notebook's three valid-padded convolutions; `full_resolution`: two same-padded convolutions a
block, so the first block sees all 28x28 pixels (`fmnist.model`)."""
AUTO = "auto"
SETTINGS_WITH_AUTO = frozenset({"mixed_precision"})
"""Settings that also take `auto`: decided by the machine a trial runs on, not searched."""


@dataclass(frozen=True)
class ModelConfig:
    """Everything that shapes and trains the CNN; defaults reproduce the original notebook."""

    layout: Layout = "original"
    filters_1: int = 32
    filters_2: int = 64
    filters_3: int = 128
    dropout_1: float = 0.25
    dropout_2: float = 0.25
    dropout_3: float = 0.4
    dense_units: int = 128
    dense_dropout: float = 0.3
    learning_rate: float = 1e-3
    lr_schedule: LearningRateSchedule = "constant"
    batch_size: int = 128
    optimizer: Optimizer = "adam"
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    augment: bool = False
    mixed_precision: bool | str = False
    """True: mixed bfloat16; `auto`: bfloat16 on CPUs with AMX or AVX-512 BF16, else float32, which is faster there."""

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
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.mixed_precision not in (True, False, AUTO):
            raise ValueError(f"mixed_precision must be true, false or {AUTO}, got {self.mixed_precision!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
