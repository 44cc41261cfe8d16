"""A small real search against an MLflow server on PostgreSQL, checked through MLflow, SQL and TensorBoard."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import matplotlib.image
import mlflow
import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient
from ray import tune
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.tuning.conftest import run_module
from tuning.champion import registry
from tuning.optimization.space import DEFAULT_SPACE_FILE, load_space
from tuning.optimization.stored_study import TUNE_TRIAL_ID_ATTR
from tuning.testing.services import MlflowServer, free_port, wait_for_http

pytestmark = pytest.mark.slow
TRIALS, EPOCHS = 3, 2
PER_EPOCH_METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_precision", "val_recall", "val_f1")


@dataclass(frozen=True)
class FinishedSearch:
    server: MlflowServer
    study_storage_url: str
    workdir: Path
    console: str
    parent_run_id: str
    trial_runs: list

    @property
    def experiment_dir(self) -> Path:
        return self.workdir / "results" / "services"


@pytest.fixture(scope="module")
def finished_search(mlflow_server: MlflowServer, study_storage_url: str, shared_data_dir: Path, tmp_path_factory) -> FinishedSearch:
    workdir = tmp_path_factory.mktemp("search")
    finished = run_module(
        "tuning.search",
        ["--data-dir", str(shared_data_dir), "--train-size", "1500", "--num-samples", str(TRIALS),
         "--max-epochs", str(EPOCHS), "--max-concurrent-trials", "2", "--storage-path", "results", "--name", "services"],
        cwd=workdir, MLFLOW_TRACKING_URI=mlflow_server.uri, OPTUNA_STORAGE=study_storage_url,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    mlflow.set_tracking_uri(mlflow_server.uri)
    client = MlflowClient(mlflow_server.uri)
    experiment = client.get_experiment_by_name("fmnist-tune")
    parents = client.search_runs([experiment.experiment_id], filter_string="attributes.run_name = 'services'")
    assert len(parents) == 1
    parent_run_id = parents[0].info.run_id
    trial_runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'")
    return FinishedSearch(mlflow_server, study_storage_url, workdir, finished.stdout + finished.stderr, parent_run_id, trial_runs)


def test_one_nested_run_per_trial(finished_search: FinishedSearch) -> None:
    client = MlflowClient(finished_search.server.uri)
    parent = client.get_run(finished_search.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert len(finished_search.trial_runs) == TRIALS
    assert len({run.data.tags["trial_id"] for run in finished_search.trial_runs}) == TRIALS
    assert all(run.info.status == "FINISHED" for run in finished_search.trial_runs)
    assert {run.data.tags["device"] for run in finished_search.trial_runs} == {"cpu"}, "no GPU here: trials train on the CPU"
    baseline = [run for run in finished_search.trial_runs if run.data.params.get("filters_1") == "32"
                and run.data.params.get("learning_rate") == "0.001" and run.data.params.get("optimizer") == "adam"]
    assert baseline, "the original config is not among the trials"
    assert parent.data.tags["best_trial_run_id"] in {run.info.run_id for run in finished_search.trial_runs}


def test_every_epoch_has_all_metrics(finished_search: FinishedSearch) -> None:
    client = MlflowClient(finished_search.server.uri)
    epochs_run = []
    for run in finished_search.trial_runs:
        epochs = int(run.data.metrics["training_iteration"])
        epochs_run.append(epochs)
        for metric in PER_EPOCH_METRICS:
            history = client.get_metric_history(run.info.run_id, metric)
            assert sorted(point.step for point in history) == list(range(1, epochs + 1)), (run.info.run_name, metric)
            assert all(0 <= point.value <= 1 for point in history) or metric.endswith("loss")
    assert max(epochs_run) == EPOCHS


def test_every_epoch_says_where_its_time_went(finished_search: FinishedSearch) -> None:
    """Fit, validation and checkpoint times are logged per epoch and fit inside Tune's time for the epoch."""
    client = MlflowClient(finished_search.server.uri)
    for run in finished_search.trial_runs:
        history = {metric: {point.step: point.value for point in client.get_metric_history(run.info.run_id, metric)}
                   for metric in ("time_fit_s", "time_validation_s", "time_checkpoint_s", "time_this_iter_s")}
        epochs = range(1, int(run.data.metrics["training_iteration"]) + 1)
        for epoch in epochs:
            parts = [history[metric][epoch] for metric in ("time_fit_s", "time_validation_s", "time_checkpoint_s")]
            assert all(part > 0 for part in parts), (run.info.run_name, epoch, parts)
            assert sum(parts) <= history["time_this_iter_s"][epoch], (run.info.run_name, epoch, parts)


def test_confusion_matrices_and_model_are_artifacts(finished_search: FinishedSearch) -> None:
    client = MlflowClient(finished_search.server.uri)
    for run in finished_search.trial_runs:
        epochs = int(run.data.metrics["training_iteration"])
        names = [artifact.path for artifact in client.list_artifacts(run.info.run_id, "confusion_matrix")]
        assert names == [f"confusion_matrix/epoch_{epoch:03d}.png" for epoch in range(1, epochs + 1)]
    local = mlflow.artifacts.download_artifacts(run_id=finished_search.parent_run_id, artifact_path="confusion_matrix/test.png")
    assert matplotlib.image.imread(local).shape[0] > 400
    model_files = {artifact.path for artifact in client.list_artifacts(finished_search.parent_run_id, "model")}
    assert {"model/MLmodel", "model/input_example.json"} <= model_files
    assert [artifact.path for artifact in client.list_artifacts(finished_search.parent_run_id, "search")] == ["search/search_space.yaml"]


def test_dataset_lineage_carries_the_digest(finished_search: FinishedSearch, dataset) -> None:
    client = MlflowClient(finished_search.server.uri)
    for run_id in [finished_search.parent_run_id] + [run.info.run_id for run in finished_search.trial_runs]:
        inputs = client.get_run(run_id).inputs.dataset_inputs
        assert {item.dataset.digest for item in inputs} == {dataset.digest[:32]}
        assert {tag.value for item in inputs for tag in item.tags} == {"training", "validation"}


def test_best_model_registered_as_champion(finished_search: FinishedSearch) -> None:
    client = MlflowClient(finished_search.server.uri)
    champion = client.get_model_version_by_alias("fmnist-cnn", "champion")
    assert champion.run_id == finished_search.parent_run_id
    test_accuracy = client.get_run(finished_search.parent_run_id).data.metrics["test_accuracy"]
    assert float(champion.tags["test_accuracy"]) == pytest.approx(test_accuracy, abs=1e-6)
    assert 0.1 < test_accuracy <= 1.0
    assert f"models:/fmnist-cnn/{champion.version}, now the champion" in finished_search.console
    validation = registry.ValidationScore.from_tags(champion.tags)
    assert validation is not None and validation.metric == "val_accuracy" and 0 < validation.standard_error < 0.05
    assert validation.value == pytest.approx(client.get_run(finished_search.parent_run_id).data.metrics["champion_val_accuracy"])
    model = mlflow.pyfunc.load_model("models:/fmnist-cnn@champion")
    assert model.metadata.get_input_schema().inputs[0].shape == (-1, 28, 28)


def test_the_champion_averages_the_leading_trials_that_score_best_on_validation(finished_search: FinishedSearch) -> None:
    """The parent run names the trials the champion averages (the best trial first, at most --ensemble-size 3) and
    its validation accuracy: at least the best trial's, which is one of the choices (to one image of the 150,
    as the evaluator's threads may round differently); the registered model holds that many members."""
    client = MlflowClient(finished_search.server.uri)
    parent = client.get_run(finished_search.parent_run_id).data
    members = parent.tags["champion_trial_ids"].split(",")
    assert members[0] == parent.tags["best_trial_id"] and 1 <= len(members) <= 3 and len(set(members)) == len(members)
    assert set(members) <= {run.data.tags["trial_id"] for run in finished_search.trial_runs}
    best_trial = max(point.value for run in finished_search.trial_runs
                     for point in client.get_metric_history(run.info.run_id, "val_accuracy"))
    assert parent.metrics["champion_val_accuracy"] >= best_trial - 1 / 150 - 1e-9
    model = mlflow.pyfunc.load_model("models:/fmnist-cnn@champion").unwrap_python_model().model
    averaged = [layer.name for layer in model.layers if layer.name.startswith("member_")]
    assert len(averaged) == (len(members) if len(members) > 1 else 0)


def test_an_average_of_trials_registers_and_loads_back_as_their_mean(finished_search: FinishedSearch, dataset) -> None:
    """The registry path of an averaged champion, whatever this small search picked: two trials' last checkpoints
    averaged, registered under a name of its own, loaded through MLflow's pyfunc."""
    from fmnist.ensemble import average
    from tuning.optimization.trainable import load_checkpoint_model

    mlflow.set_tracking_uri(finished_search.server.uri)
    trial_dirs = sorted(finished_search.experiment_dir.glob("trial-*"))[:2]
    members = [load_checkpoint_model(tune.Checkpoint(str(max(trial_dir.glob("checkpoint_*")))))
               for trial_dir in trial_dirs]
    registration = registry.register(finished_search.parent_run_id, average(members), dataset.test, 0.5, _scored(0.5),
                                     "fmnist-cnn-average-test")
    images = dataset.test.images[:8].astype(np.float32)
    served = mlflow.pyfunc.load_model(registration.model_uri).predict(images)
    expected = np.mean([member.predict(images, verbose=0) for member in members], axis=0)
    np.testing.assert_allclose(np.asarray(served), expected, atol=1e-5)


def test_the_served_champion_answers_images_and_refuses_pixels_out_of_range(finished_search: FinishedSearch, dataset) -> None:
    """`mlflow models serve` of the champion: the Keras model's answers for real images, HTTP 400 naming the
    range for pixels outside 0..255, and still up afterwards."""
    port, log_path = free_port(), finished_search.workdir / "model-server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/fmnist-cnn@champion", "--env-manager", "local",
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "MLFLOW_TRACKING_URI": finished_search.server.uri},
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(base + "/ping", server, log_path)
        images = dataset.test.images[:4].astype(np.float32)
        status, answer = post_json(base + "/invocations", {"inputs": images.tolist()})
        keras_model = mlflow.pyfunc.load_model("models:/fmnist-cnn@champion").unwrap_python_model().model
        assert status == 200
        np.testing.assert_allclose(json.loads(answer)["predictions"], keras_model.predict(images, verbose=0), atol=1e-5)
        for bad_pixel in (256.0, -1.0):
            status, answer = post_json(base + "/invocations", {"inputs": np.full((1, 28, 28), bad_pixel).tolist()})
            assert status == 400 and "pixel values must be finite and in 0..255" in answer, (status, answer[-300:])
        assert post_json(base + "/invocations", {"inputs": images.tolist()})[0] == 200
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_postgres_holds_runs_metrics_and_registry(finished_search: FinishedSearch) -> None:
    run_ids = tuple(run.info.run_id for run in finished_search.trial_runs)
    with finished_search.server.connect() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT run_uuid FROM tags WHERE key = 'mlflow.parentRunId' AND value = %s", (finished_search.parent_run_id,))
        assert {row[0] for row in cursor.fetchall()} == set(run_ids)
        cursor.execute(
            "SELECT key, COUNT(DISTINCT run_uuid) FROM metrics WHERE run_uuid IN %s AND key IN %s GROUP BY key",
            (run_ids, ("val_accuracy", "val_precision", "val_recall", "val_f1")),
        )
        assert dict(cursor.fetchall()) == {key: TRIALS for key in ("val_accuracy", "val_precision", "val_recall", "val_f1")}
        cursor.execute("SELECT version FROM registered_model_aliases WHERE name = 'fmnist-cnn' AND alias = 'champion'")
        (version,) = cursor.fetchone()
        cursor.execute("SELECT run_id FROM model_versions WHERE name = 'fmnist-cnn' AND version = %s", (version,))
        assert cursor.fetchone()[0] == finished_search.parent_run_id


def test_tensorboard_holds_scalars_hparams_and_images(finished_search: FinishedSearch) -> None:
    trial_dirs = sorted(finished_search.experiment_dir.glob("trial-*"))
    assert len(trial_dirs) == TRIALS
    for trial_dir in trial_dirs:
        events = EventAccumulator(str(trial_dir), size_guidance={"images": 0, "scalars": 0})
        events.Reload()
        tags = events.Tags()
        assert {"ray/tune/val_accuracy", "ray/tune/val_f1", "ray/tune/val_precision", "ray/tune/val_recall"} <= set(tags["scalars"])
        images = events.Images("validation/confusion_matrix")
        epochs = len(events.Scalars("ray/tune/val_accuracy"))
        assert [image.step for image in images] == list(range(1, epochs + 1))
        assert matplotlib.image.imread(io.BytesIO(images[-1].encoded_image_string), format="png").shape[0] > 400
        assert events.PluginTagToContent("hparams"), f"{trial_dir.name}: no HParams summary"


def _scored(value: float) -> registry.ValidationScore:
    """A validation score on one validation set, with a standard error of 0.01."""
    return registry.ValidationScore("val_accuracy", value, 0.01, "same-images")


def test_the_champion_moves_on_validation_by_more_than_its_margin_never_on_test(finished_search: FinishedSearch, dataset) -> None:
    """Under a model name of its own, so the search's champion stays as the other tests expect."""
    mlflow.set_tracking_uri(finished_search.server.uri)
    client = MlflowClient(finished_search.server.uri)
    name = "fmnist-cnn-promotion-test"
    model = mlflow.pyfunc.load_model("models:/fmnist-cnn@champion").unwrap_python_model().model
    first = registry.register(finished_search.parent_run_id, model, dataset.test, 0.80, _scored(0.80), name)
    assert first.promoted and first.standing == "now the champion"
    noise = registry.register(finished_search.parent_run_id, model, dataset.test, 0.99, _scored(0.81), name)
    assert not noise.promoted, "0.01 better on validation is within the margin; its test accuracy must not count"
    assert noise.standing == f"version {first.version} stays the champion (0.8000 against 0.8100, margin 0.0141)"
    assert client.get_model_version_by_alias(name, "champion").version == first.version
    better = registry.register(finished_search.parent_run_id, model, dataset.test, 0.50, _scored(0.85), name)
    assert better.promoted
    assert client.get_model_version_by_alias(name, "champion").version == better.version != first.version
    elsewhere = registry.ValidationScore("val_accuracy", 0.70, 0.01, "other-images")
    assert registry.register(finished_search.parent_run_id, model, dataset.test, 0.70, elsewhere, name).promoted, \
        "a score on other images cannot be compared: a new validation set starts afresh"


def test_two_searches_finishing_at_once_leave_the_champion_on_the_better_model(finished_search: FinishedSearch, dataset) -> None:
    """The race of check-then-set: both registrations run at once, in threads, several times over."""
    mlflow.set_tracking_uri(finished_search.server.uri)
    client = MlflowClient(finished_search.server.uri)
    model = mlflow.pyfunc.load_model("models:/fmnist-cnn@champion").unwrap_python_model().model
    for attempt, accuracies in enumerate(((0.80, 0.90), (0.90, 0.80), (0.85, 0.95), (0.95, 0.85))):
        name = f"fmnist-cnn-race-{attempt}"
        with ThreadPoolExecutor(max_workers=2) as pool:
            registrations = list(pool.map(
                lambda accuracy, name=name: registry.register(
                    finished_search.parent_run_id, model, dataset.test, accuracy, _scored(accuracy), name),
                accuracies,
            ))
        best = max(zip(accuracies, registrations))[1]
        assert client.get_model_version_by_alias(name, "champion").version == best.version, (accuracies, registrations)


def test_the_study_in_postgresql_holds_every_trial_and_epoch(finished_search: FinishedSearch) -> None:
    study = optuna.load_study(study_name="services", storage=finished_search.study_storage_url)
    tune_ids = sorted(run.data.tags["trial_id"] for run in finished_search.trial_runs)
    assert sorted(trial.user_attrs[TUNE_TRIAL_ID_ATTR] for trial in study.trials) == tune_ids
    runs_by_trial = {run.data.tags["trial_id"]: run for run in finished_search.trial_runs}
    client = MlflowClient(finished_search.server.uri)
    for trial in study.trials:
        run = runs_by_trial[trial.user_attrs[TUNE_TRIAL_ID_ATTR]]
        history = {point.step: point.value for point in client.get_metric_history(run.info.run_id, "val_accuracy")}
        assert trial.intermediate_values == pytest.approx(history)
        finished_all = trial.last_step == EPOCHS
        assert trial.state == (optuna.trial.TrialState.COMPLETE if finished_all else optuna.trial.TrialState.PRUNED)
    assert [trial.params for trial in study.trials[:2]] == load_space(DEFAULT_SPACE_FILE).first_trials()


def test_the_console_is_quiet_and_fits_a_terminal(finished_search: FinishedSearch) -> None:
    progress = finished_search.console[: finished_search.console.index("\nTop ")]
    assert progress.startswith("searching 3 trials of up to 2 epochs") and "\n== " in progress
    assert [line for line in finished_search.console.splitlines() if len(line) > 120] == []
    for noise in ("oneDNN", "absl::InitializeLog", "cpu_feature_guard", "Failed to import Git", "━━", "INFO mlflow",
                  "A new study created"):
        assert noise not in finished_search.console, noise


def test_report_reads_the_stored_study_and_saves_optuna_plots(finished_search: FinishedSearch) -> None:
    finished = run_module(
        "tuning.report", ["--run-id", finished_search.parent_run_id, "--output-dir", "reports"],
        cwd=finished_search.workdir, MLFLOW_TRACKING_URI=finished_search.server.uri,
        OPTUNA_STORAGE=finished_search.study_storage_url,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert f"Search services ({finished_search.parent_run_id}): {TRIALS} trials" in finished.stdout
    assert finished.stdout.count("COMPLETE") + finished.stdout.count("PRUNED") == TRIALS
    plots = sorted(path.name for path in (finished_search.workdir / "reports" / "services").glob("*.png"))
    assert plots == ["intermediate_values.png", "optimization_history.png", "parallel_coordinate.png", "param_importances.png"]
    logged = {artifact.path for artifact in MlflowClient(finished_search.server.uri).list_artifacts(finished_search.parent_run_id, "report")}
    assert logged == {f"report/{name}" for name in plots}


def post_json(url: str, body: object) -> tuple[int, str]:
    """POST `body` as JSON; the HTTP status and the answer's text, errors included."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()

