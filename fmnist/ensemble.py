"""Several trained CNNs as one Keras model that averages their class probabilities.

Example:
    >>> champion = average([best_model, second_model])  # doctest: +SKIP
    >>> champion.save("champion.keras")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from fmnist.readers import IMAGE_SIDE

if TYPE_CHECKING:
    import keras


def average(models: Sequence[keras.Model]) -> keras.Model:
    """One model whose output is the mean of `models`' class probabilities; a single model is returned as is.

    Each member keeps its own layers under the name `member_<n>`, so the saved `.keras` file loads back
    with `keras.models.load_model` and no custom objects. Keras is imported here, not with the module: importing this
    module loads no TensorFlow.
    """
    import keras

    if not models:
        raise ValueError("an average needs at least one model")
    if len(models) == 1:
        return models[0]
    pixels = keras.Input(shape=(IMAGE_SIDE, IMAGE_SIDE), name="pixels")
    outputs = [keras.Model(model.input, model.output, name=f"member_{number}")(pixels)
               for number, model in enumerate(models, start=1)]
    return keras.Model(pixels, keras.layers.Average(name="probabilities")(outputs), name="fmnist_cnn_average")

