"""The CNN: the original layout by default, every tunable setting honoured, real training."""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from fmnist.data import stratified_split, stratified_subset
from fmnist.model import (
    ModelConfig,
    bfloat16_is_native,
    build,
    cosine_rate,
    learning_rate_callbacks,
    one_hot,
    uses_bfloat16,
)


def _layer_summary(model: keras.Model) -> list[tuple[str, object]]:
    described = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            described.append((kind, layer.filters))
        elif kind == "Dense":
            described.append((kind, layer.units))
        elif kind == "Dropout":
            described.append((kind, layer.rate))
        elif kind in ("BatchNormalization", "MaxPooling2D", "Flatten"):
            described.append((kind, None))
    return described


def test_default_config_is_the_original_layout() -> None:
    model = build()
    assert _layer_summary(model) == [
        ("Conv2D", 32), ("BatchNormalization", None), ("MaxPooling2D", None), ("Dropout", 0.25),
        ("BatchNormalization", None), ("Conv2D", 64), ("MaxPooling2D", None), ("Dropout", 0.25),
        ("BatchNormalization", None), ("Conv2D", 128), ("Dropout", 0.4),
        ("Flatten", None), ("BatchNormalization", None), ("Dense", 128), ("Dropout", 0.3), ("Dense", 10),
    ]
    first_conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    assert type(first_conv.kernel_initializer).__name__ == "HeNormal"
    assert model.count_params() == 246_666
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert model.input_shape == (None, 28, 28) and model.output_shape == (None, 10)


def test_the_full_resolution_layout_convolves_every_pixel_twice_a_block() -> None:
    model = build(ModelConfig(layout="full_resolution"))
    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(layer.filters, layer.output.shape[1]) for layer in convolutions] == [
        (32, 28), (32, 28), (64, 14), (64, 14), (128, 7), (128, 7)], "same padding: a block keeps its side"
    assert next(layer for layer in model.layers if isinstance(layer, keras.layers.Flatten)).output.shape[1] == 3 * 3 * 128
    assert model.input_shape == (None, 28, 28) and model.output_shape == (None, 10)


def test_config_changes_the_network() -> None:
    config = ModelConfig(filters_1=16, filters_2=48, filters_3=96, dense_units=64, dropout_3=0.1,
                         optimizer="sgd", learning_rate=0.05, label_smoothing=0.1, augment=True)
    model = build(config)
    summary = _layer_summary(model)
    assert [units for kind, units in summary if kind == "Conv2D"] == [16, 48, 96]
    assert ("Dense", 64) in summary and ("Dropout", 0.1) in summary
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(0.05)
    assert {"RandomFlip", "RandomTranslation"} <= {type(layer).__name__ for layer in model.layers}
    assert model.loss.get_config()["label_smoothing"] == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"filters_1": 0}, "filters_1 must be a positive integer"),
        ({"dropout_2": 1.0}, r"dropout_2 must be in \[0, 1\)"),
        ({"learning_rate": 0.0}, "learning_rate must be positive"),
        ({"optimizer": "adagrad"}, "optimizer must be one of adam, adamw, sgd, rmsprop"),
        ({"weight_decay": -1.0}, "weight_decay must be >= 0"),
        ({"layout": "wide"}, "layout must be one of original, full_resolution"),
    ],
)
def test_bad_config_is_refused(settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelConfig.from_dict(settings)


def test_from_dict_ignores_tune_bookkeeping_keys() -> None:
    config = ModelConfig.from_dict({"filters_2": 80, "max_epochs": 3, "trial_seed": 1})
    assert config.filters_2 == 80 and config.filters_1 == 32


@pytest.mark.slow
@pytest.mark.parametrize("mixed_precision", [False, True], ids=["float32", "bfloat16"])
def test_one_epoch_on_real_images_learns(dataset, mixed_precision: bool) -> None:
    train, validation = stratified_split(stratified_subset(dataset.train, 3_000), validation_fraction=0.2)
    keras.utils.set_random_seed(0)  # one epoch on 2,400 images lands near 0.55: keep it repeatable
    model = build(ModelConfig(mixed_precision=mixed_precision, batch_size=64))
    model.fit(train.images, one_hot(train.labels), batch_size=64, epochs=1, verbose=0)
    predicted = model.predict(validation.images, verbose=0).argmax(axis=1)
    accuracy = float(np.mean(predicted == validation.labels))
    assert accuracy > 0.5, f"validation accuracy {accuracy:.3f} after one epoch on 2,400 real images"


def test_fmnist_imports_neither_ray_nor_mlflow() -> None:
    import subprocess

    code = "import fmnist, fmnist.model, fmnist.metrics, sys; print(sorted(m for m in ('ray', 'mlflow') if m in sys.modules))"
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert finished.stdout.strip() == "[]"


def test_cosine_rate_decays_from_the_base_rate_to_zero_over_the_planned_epochs() -> None:
    rates = [cosine_rate(2e-3, epoch, epochs=4) for epoch in range(6)]
    assert rates[0] == pytest.approx(2e-3 * 0.9619, rel=1e-3) and rates[3] == pytest.approx(2e-3 * 0.0381, rel=1e-2)
    assert rates[:4] == sorted(rates[:4], reverse=True)
    assert rates[4] == rates[5] == rates[3], "epochs past the plan keep its last rate"
    assert cosine_rate(2e-3, 0, epochs=1) == pytest.approx(1e-3)


@pytest.mark.slow
def test_cosine_schedule_sets_each_epochs_rate_when_training_an_epoch_at_a_time(dataset) -> None:
    """As a trial trains: one `fit` per epoch with `initial_epoch`, the plan shrunk from 6 epochs to 3 after the first."""
    train = stratified_subset(dataset.train, 200)
    config = ModelConfig(learning_rate=2e-3, lr_schedule="cosine", optimizer="rmsprop", batch_size=100)
    model = build(config)
    rates = []
    for epoch, planned in ((1, 6), (2, 3), (3, 3)):
        model.fit(train.images, one_hot(train.labels), batch_size=100, initial_epoch=epoch - 1, epochs=epoch, verbose=0,
                  callbacks=learning_rate_callbacks(config, planned))
        rates.append(float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))
    assert rates == pytest.approx([cosine_rate(2e-3, 0, 6), cosine_rate(2e-3, 1, 3), cosine_rate(2e-3, 2, 3)], rel=1e-5)
    assert learning_rate_callbacks(ModelConfig(), 6) == [], "a constant rate needs no callback"


def test_auto_precision_follows_the_cpu() -> None:
    """`auto` trains in bfloat16 exactly where /proc/cpuinfo lists AMX or AVX-512 for bfloat16, else in float32."""
    flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")).split()
    native = "amx_bf16" in flags or "avx512_bf16" in flags
    assert bfloat16_is_native() is native
    model = build(ModelConfig(mixed_precision="auto"))
    conv_policies = {layer.dtype_policy.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)}
    assert conv_policies == {"mixed_bfloat16" if native else "float32"}
    assert uses_bfloat16(ModelConfig(mixed_precision=True)) and not uses_bfloat16(ModelConfig())


def test_a_precision_that_is_not_true_false_or_auto_is_refused() -> None:
    with pytest.raises(ValueError, match="mixed_precision must be true, false or auto, got 'fast'"):
        ModelConfig(mixed_precision="fast").validate()
