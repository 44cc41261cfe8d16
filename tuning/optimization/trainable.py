"""The Tune trainable: build the CNN from the trial's config, train an epoch at a time, report, checkpoint.

Keras and TensorFlow are imported inside the functions, in the trial's (or the test task's) process:
the driver, which only hands `train_cnn` to Tune, never loads them.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray import tune

from fmnist.config import ModelConfig
from fmnist.data import Split, stratified_subset
from fmnist.evaluation import evaluate
from tuning.optimization.devices import use_assigned_devices
from tuning.optimization.epoch_plan import EpochPace, outruns, replan
from tuning.optimization.objective import (
    CONFUSION_MATRIX_KEY,
    DEVICE_KEY,
    EPOCH_KEY,
    PLANNED_EPOCHS_KEY,
    SCREEN_EPOCHS_KEY,
    SCREEN_IMAGES_KEY,
    SCREEN_SECONDS_KEY,
)

if TYPE_CHECKING:
    import keras

MODEL_FILE = "model.keras"
STATE_FILE = "state.json"


def train_cnn(
    config: dict[str, Any], *, train: Split, validation: Split, max_epochs: int, seed: int = 0, deadline: float | None = None,
) -> None:
    """Train for the planned epochs (or until the scheduler stops the trial), reporting after every epoch.

    The plan is `max_epochs`, fitted after each epoch to what still fits before `deadline` (the wall-clock
    `time.time()` at which the search's time budget ends) at the trial's pace, never past `max_epochs` nor so as to
    raise the learning rate (`tuning.optimization.epoch_plan`); a cosine learning-rate
    schedule decays over the plan, and the trial ends with it. Each result holds the plan as `planned_epochs`.

    Each result also says where the epoch's time went: `time_fit_s`, `time_validation_s` and
    `time_checkpoint_s` (saving the model). Tune's `time_this_iter_s` holds these and the report, but not
    the report's wait for the driver to ask for the next epoch.

    A screening trial's config says its fidelity: it trains on a class-balanced `screen_train_images` of `train` for
    `screen_epochs` instead of `max_epochs` (`tuning.optimization.screening`), and stops before its plan ends when its
    pace says the plan would end after `screen_most_seconds` from its start.

    `train` and `validation` arrive through Ray's object store (`tune.with_parameters`).
    A restarted trial continues from its last checkpoint.
    """
    import keras

    from fmnist.model import learning_rate_callbacks, one_hot

    trial_started = time.time()
    most_seconds = config.get(SCREEN_SECONDS_KEY)
    device = use_assigned_devices()
    keras.backend.clear_session()  # a reused process lets go of the previous trial's model
    keras.utils.set_random_seed(seed)
    model_config = ModelConfig.from_dict(config)
    if SCREEN_IMAGES_KEY in config:
        train, max_epochs = stratified_subset(train, int(config[SCREEN_IMAGES_KEY]), seed=seed), int(config[SCREEN_EPOCHS_KEY])
    model, finished_epochs, planned = _restore_or_build(model_config, max_epochs)
    targets = one_hot(train.labels)
    pace, epoch = EpochPace(), finished_epochs
    while epoch < planned:
        epoch += 1
        started = time.perf_counter()
        history = model.fit(
            train.images, targets, batch_size=model_config.batch_size, initial_epoch=epoch - 1, epochs=epoch, verbose=0,
            callbacks=learning_rate_callbacks(model_config, planned),
        )
        fitted = time.perf_counter()
        metrics = {
            EPOCH_KEY: epoch,
            DEVICE_KEY: device,
            "train_images": len(train),
            "train_loss": float(history.history["loss"][-1]),
            "train_accuracy": float(history.history["accuracy"][-1]),
            **validation_metrics(model, validation),
        }
        validated = time.perf_counter()
        seconds_per_epoch = pace.epoch_ended()
        planned = replan(planned, epoch, seconds_per_epoch, None if deadline is None else deadline - time.time(), max_epochs)
        with tempfile.TemporaryDirectory() as directory:
            model.save(Path(directory) / MODEL_FILE)
            (Path(directory) / STATE_FILE).write_text(json.dumps({EPOCH_KEY: epoch, PLANNED_EPOCHS_KEY: planned}))
            metrics |= {PLANNED_EPOCHS_KEY: planned, "time_fit_s": fitted - started, "time_validation_s": validated - fitted,
                        "time_checkpoint_s": time.perf_counter() - validated}
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))
        if outruns(time.time() - trial_started, seconds_per_epoch, planned - epoch, most_seconds):
            return


def validation_metrics(model: keras.Model, validation: Split) -> dict[str, Any]:
    """Loss, accuracy, macro precision/recall/F1 and the confusion matrix (as JSON) on the validation split."""
    evaluation = evaluate(model, validation)
    confusion_matrix = json.dumps(evaluation.metrics.confusion_matrix.tolist())
    return evaluation.scalars(prefix="val_") | {CONFUSION_MATRIX_KEY: confusion_matrix}


def load_checkpoint_model(checkpoint: tune.Checkpoint) -> keras.Model:
    """The Keras model saved in a trial checkpoint."""
    import keras

    with checkpoint.as_directory() as directory:
        return keras.models.load_model(Path(directory) / MODEL_FILE)


def _restore_or_build(model_config: ModelConfig, max_epochs: int) -> tuple[keras.Model, int, int]:
    """The model, its finished epochs and its planned epochs: new, or from the trial's last checkpoint."""
    import keras

    from fmnist.model import build

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return build(model_config), 0, max_epochs
    with checkpoint.as_directory() as directory:
        state = json.loads((Path(directory) / STATE_FILE).read_text())
        model = keras.models.load_model(Path(directory) / MODEL_FILE)
    return model, int(state[EPOCH_KEY]), int(state.get(PLANNED_EPOCHS_KEY, max_epochs))
