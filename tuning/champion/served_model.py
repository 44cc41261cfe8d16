"""The champion as MLflow logs and serves it: the Keras CNN behind a pyfunc that refuses pixels outside 0..255.

MLflow's signature already refuses a wrong shape or dtype; the pixel range is this wrapper's check, so
`mlflow models serve` answers a request out of range with HTTP 400 and a message naming the range.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException

if TYPE_CHECKING:
    import keras

KERAS_MODEL_ARTIFACT = "keras_model"
PIXEL_RANGE = (0.0, 255.0)
BATCH_SIZE = 256
"""Images per call of the Keras model: `predict_on_batch` skips the data pipeline `predict` builds on every call."""


class PixelClassifier(mlflow.pyfunc.PythonModel):
    """Raw pixels (N, 28, 28) in 0..255 -> class probabilities (N, 10), from the saved Keras model."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        """Load the Keras model saved as this model's artifact."""
        import keras

        self.model: keras.Model = keras.models.load_model(context.artifacts[KERAS_MODEL_ARTIFACT])

    def predict(self, context: mlflow.pyfunc.PythonModelContext, model_input: np.ndarray, params: dict[str, Any] | None = None) -> np.ndarray:
        """Class probabilities; an MlflowException (HTTP 400 when served) for pixels outside 0..255."""
        check_pixel_range(model_input)
        images = np.asarray(model_input, dtype=np.float32)
        batches = [np.asarray(self.model.predict_on_batch(images[start:start + BATCH_SIZE]))
                   for start in range(0, len(images), BATCH_SIZE)]
        return np.concatenate(batches) if batches else np.empty((0, self.model.output_shape[-1]), dtype=np.float32)


def check_pixel_range(images: np.ndarray) -> None:
    """Raise MlflowException (invalid parameter value) naming the range and what came, for pixels outside it."""
    low, high = PIXEL_RANGE
    values = np.asarray(images, dtype=np.float64)
    if values.size and not (np.isfinite(values).all() and values.min() >= low and values.max() <= high):
        raise MlflowException.invalid_parameter_value(
            f"pixel values must be finite and in {low:g}..{high:g}, got {np.nanmin(values):g}..{np.nanmax(values):g}"
        )
