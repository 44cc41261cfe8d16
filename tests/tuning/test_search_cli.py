"""The search command: embedded defaults, resume after an interruption, one-line errors on bad input."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
import ray
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from tests.tuning.conftest import run_module, search_environment
from tuning.optimization.space import load_space, space_file
from tuning.optimization.stored_study import TUNE_TRIAL_ID_ATTR, WARM_START_SOURCE_ATTR, screen_study_name
from tuning.runtime.cluster import local_head
from tuning.settings import SearchSettings, flag
from tuning.testing.services import MlflowServer, free_port, private_postgres, running_mlflow_server

pytestmark = pytest.mark.slow  # runs `python -m tuning.search`, which starts Ray


def test_help_documents_every_flag(tmp_path: Path) -> None:
    finished = run_module("tuning.search", ["--help"], cwd=tmp_path)
    assert finished.returncode == 0
    every_setting = [flag(field.name) for field in dataclasses.fields(SearchSettings)]
    for option in (*every_setting, "--smoke-test", "--resume", "--warm-start"):
        assert f"\n  {option} " in finished.stdout, option


@pytest.mark.slow
def test_embedded_defaults_need_no_services(tmp_path: Path, shared_data_dir: Path) -> None:
    finished = run_module("tuning.search", ["--smoke-test", "--data-dir", str(shared_data_dir)], cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert (tmp_path / "mlflow.db").exists() and list((tmp_path / "results").glob("fmnist-search-*/trial-*"))
    assert (tmp_path / "optuna.db").exists(), "the study is not stored beside mlflow.db"
    with sqlite3.connect(tmp_path / "mlflow.db") as database:
        aliases = database.execute("SELECT name, alias FROM registered_model_aliases").fetchall()
        runs = database.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        trial_runs = sorted(name for (name,) in database.execute("SELECT name FROM runs WHERE name LIKE 'trial-%'"))
    assert aliases == [("fmnist-cnn", "champion")] and runs == 3
    assert "Test set: accuracy" in finished.stdout
    lines = finished.stdout.splitlines()
    assert lines[0] == "searching 2 trials of up to 1 epoch, with no time budget; --time-budget-s to set one", lines[:3]
    assert max(len(line) for line in lines) <= 120, max(lines, key=len)
    noise = ("Token authentication is enabled", "Tuner.restore", "Traceback")  # the libraries' lines kept out
    assert not [line for line in finished.stderr.splitlines() if any(text in line for text in noise)], finished.stderr[-2000:]
    (experiment_dir,) = (tmp_path / "results").glob("fmnist-search-*")
    study = optuna.load_study(study_name=experiment_dir.name, storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    names = sorted(f"trial-{trial.number}" for trial in study.trials)
    assert names == trial_runs == sorted(path.name for path in experiment_dir.glob("trial-*")), "one name everywhere"
    summary = lines[lines.index(next(line for line in lines if line.startswith("Top "))) + 2:][:2]
    assert sorted(f"trial-{row.split()[0]}" for row in summary) == names, summary
    log = (experiment_dir / "search.log").read_text()
    printed_to_stderr = set(finished.stderr.splitlines())
    assert [line for line in log.splitlines() if line not in printed_to_stderr] == lines, "the log is not what it printed"
    no_ray = f"http://127.0.0.1:{free_port()}"  # Ray's job history gone, as after a platform restart
    saved = run_module("tuning.jobs", ["logs", experiment_dir.name], cwd=tmp_path, RAY_API_SERVER_ADDRESS=no_ray)
    assert saved.returncode == 0 and saved.stdout == log, saved.stderr[-2000:]


def _first_checkpoint(experiment_dir: Path, search: subprocess.Popen, timeout: float = 300) -> None:
    """Wait until a trial has checkpointed and the driver has recorded that result."""
    deadline = time.monotonic() + timeout
    while not any(path.stat().st_size for path in experiment_dir.glob("trial-*/result.json")) or not list(
        experiment_dir.glob("trial-*/checkpoint_000000")
    ):
        assert search.poll() is None, "the search ended before it could be interrupted"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.5)


@pytest.mark.slow
def test_resume_continues_an_interrupted_search(mlflow_server: MlflowServer, shared_data_dir: Path, tmp_path: Path) -> None:
    """Interrupted with Ctrl+C, then resumed from another folder with the README's command and `--storage-path`
    alone: every saved setting comes back, the study database's place included."""
    search = subprocess.Popen(
        [sys.executable, "-m", "tuning.search", "--data-dir", str(shared_data_dir), "--train-size", "3000", "--config", "original",
         "--name", "interrupted", "--experiment-name", "resume-test", "--model-name", "fmnist-cnn-resume",
         "--num-samples", "3", "--max-epochs", "3", "--max-concurrent-trials", "1"],
        cwd=tmp_path, env=search_environment(MLFLOW_TRACKING_URI=mlflow_server.uri),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    experiment_dir = tmp_path / "results" / "interrupted"
    _first_checkpoint(experiment_dir, search)
    search.send_signal(signal.SIGINT)
    _, stderr = search.communicate(timeout=300)
    assert search.returncode == 130, stderr[-3000:]
    assert "--resume --name interrupted" in stderr
    assert "Tuner.restore" not in stderr, "Tune's own resume hint is not how this project resumes"
    (interrupted,) = MlflowClient(mlflow_server.uri).search_runs(
        [MlflowClient(mlflow_server.uri).get_experiment_by_name("resume-test").experiment_id],
        filter_string="attributes.run_name = 'interrupted'")
    assert interrupted.info.status == "KILLED", "an interrupted search's run must not stay RUNNING"

    conflicting = run_module("tuning.search", ["--resume", "--name", "interrupted", "--train-size", "5000"], cwd=tmp_path)
    assert conflicting.returncode == 2
    assert conflicting.stderr.strip().splitlines()[-1] == (
        "error: --resume: --train-size 5000 conflicts with the saved search's 3000; "
        "drop the flag to continue the search as it was started"
    )

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    resumed = run_module("tuning.search", ["--resume", "--name", "interrupted", "--storage-path", str(tmp_path / "results")],
                         cwd=elsewhere)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not (elsewhere / "optuna.db").exists(), "the resumed search opened another study database where it ran"
    client = MlflowClient(mlflow_server.uri)
    experiment = client.get_experiment_by_name("resume-test")
    (parent,) = client.search_runs([experiment.experiment_id], filter_string="attributes.run_name = 'interrupted'")
    trial_runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    trial_dirs = list(experiment_dir.glob("trial-*"))
    assert len(trial_runs) == len(trial_dirs) == 3
    assert len({run.data.tags["trial_id"] for run in trial_runs}) == 3
    assert sorted(run.info.run_name for run in trial_runs) == sorted(path.name for path in trial_dirs)
    for run in trial_runs:
        epochs = int(run.data.metrics["training_iteration"])
        steps = [point.step for point in client.get_metric_history(run.info.run_id, "val_accuracy")]
        assert sorted(set(steps)) == list(range(1, epochs + 1)), (run.info.run_name, steps)
    for trial_dir in trial_dirs:
        results = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()]
        assert {result["train_images"] for result in results} == {3000}, "the resumed trials trained on other data"
    assert parent.info.status == "FINISHED" and "test_accuracy" in parent.data.metrics
    assert client.get_registered_model("fmnist-cnn-resume").aliases == {"champion": "1"}
    study = optuna.load_study(study_name="interrupted", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert sorted(trial.user_attrs[TUNE_TRIAL_ID_ATTR] for trial in study.trials) == sorted(
        run.data.tags["trial_id"] for run in trial_runs
    ), "the resumed search asked its study for other trials"
    assert all(trial.state.is_finished() and trial.state != TrialState.FAIL for trial in study.trials)


@pytest.mark.slow
def test_a_time_budget_screens_on_a_share_of_the_images_then_trains_the_best_on_all(tmp_path: Path, shared_data_dir: Path) -> None:
    finished = run_module("tuning.search", ["--data-dir", str(shared_data_dir), "--train-size", "1500", "--time-budget-s", "75",
                                            "--screen-share", "0.5", "--config", "original", "--name", "screened"], cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    screen = optuna.load_study(study_name=screen_study_name("screened"), storage=storage)
    full = optuna.load_study(study_name="screened", storage=storage)
    # how many configurations fit in the share depends on the host; a point to evaluate left unasked stays WAITING
    screened = [trial for trial in screen.trials if trial.state != TrialState.WAITING]
    assert screened and screened[0].params == load_space(space_file("original")).first_trials()[0]
    assert all(trial.state == TrialState.COMPLETE and trial.last_step == 2 for trial in screened), "none outran the share"
    best_screened = max(screened, key=lambda trial: trial.value)
    assert full.trials and full.trials[0].params == best_screened.params, "the best screened trains on all the images"
    assert full.trials[0].state == TrialState.COMPLETE and full.trials[0].last_step >= 1, "it trained its own plan to its end"
    assert not [trial for trial in [*screen.trials, *full.trials] if trial.state == TrialState.RUNNING], "none left running"
    with sqlite3.connect(tmp_path / "mlflow.db") as database:
        runs = dict(database.execute("SELECT runs.name, params.value FROM runs LEFT JOIN params ON params.run_uuid = "
                                     "runs.run_uuid AND params.key = 'screen_train_images' WHERE runs.name != 'screened'"))
    screen_images = str(round(1500 * SearchSettings.screen_fraction))
    assert runs == {**{f"screen-{trial.number}": screen_images for trial in screened},
                    **{f"trial-{trial.number}": None for trial in full.trials}}, "a run a trial, each named after its study"
    assert sorted(path.name for path in (tmp_path / "results" / "screened").glob("*-*") if path.is_dir()) == sorted(runs)


@pytest.mark.slow
def test_warm_start_seeds_the_study_with_trials_inside_the_new_space(tmp_path: Path, shared_data_dir: Path) -> None:
    common = ["--data-dir", str(shared_data_dir), "--smoke-test"]
    earlier = run_module("tuning.search", [*common, "--name", "earlier"], cwd=tmp_path)
    assert earlier.returncode == 0, earlier.stderr[-3000:]
    space = tmp_path / "narrow.yaml"  # the earlier search's second trial (seeded TPE) has a learning rate below 5e-4
    space.write_text("search_space:\n  learning_rate: {type: loguniform, low: 5.0e-4, high: 2.0e-3}\n")
    later = run_module("tuning.search", [*common, "--name", "later", "--config", str(space), "--warm-start", "earlier"], cwd=tmp_path)
    assert later.returncode == 0, later.stderr[-3000:]
    assert "warm start: 1 trials from earlier, 1 skipped (outside this search's space)" in later.stdout
    study = optuna.load_study(study_name="later", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert [trial.user_attrs.get(WARM_START_SOURCE_ATTR) for trial in study.trials] == ["earlier", None, None]
    assert study.trials[0].params == {"learning_rate": 0.001}
    with sqlite3.connect(tmp_path / "mlflow.db") as database:
        params = dict(database.execute(
            "SELECT key, value FROM params JOIN runs ON params.run_uuid = runs.run_uuid WHERE runs.name = 'later'"
        ).fetchall())
    assert params["search.warm_start"] == "earlier"
    assert (params["search.cpus_per_trial"], params["search.max_concurrent_trials"]) == ("1", str(cpus_a_local_ray_counts())), (
        "the parent run should show the CPUs and concurrency `auto` resolved to")
    assert (params["warm_start.trials_added"], params["warm_start.trials_skipped"]) == ("1", "1")


@pytest.mark.slow
def test_a_search_joining_a_running_local_ray_keeps_its_champion_in_its_own_folder(tmp_path: Path, shared_data_dir: Path) -> None:
    """The workers of a Ray started with `ray start --head` run in the folder it was started from: the champion,
    which the evaluator actor registers, must still land in the search folder's `mlflow.db`."""
    started_here = tmp_path / "ray-started-here"
    started_here.mkdir()
    # A short RAY_TMPDIR: Ray's socket paths must fit in 107 bytes.
    with (tempfile.TemporaryDirectory(prefix="r", dir="/tmp") as ray_temp,
          local_head(free_port(), cwd=started_here, environment=search_environment(RAY_TMPDIR=ray_temp))):
        finished = run_module("tuning.search", ["--data-dir", str(shared_data_dir), "--smoke-test", "--name", "joined"],
                              cwd=tmp_path, RAY_TMPDIR=ray_temp)
        sessions = [path.name for path in Path(ray_temp, "ray").glob("session_2*")]
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert len(sessions) == 1, f"the search started a Ray of its own instead of joining: {sessions}"
    assert not (started_here / "mlflow.db").exists(), "the evaluator wrote to an mlflow.db where Ray was started"
    with sqlite3.connect(tmp_path / "mlflow.db") as database:
        logged = {key for (key,) in database.execute(
            "SELECT key FROM metrics JOIN runs ON metrics.run_uuid = runs.run_uuid WHERE runs.name = 'joined'")}
    assert "test_accuracy" in logged


def cpus_a_local_ray_counts() -> int:
    """The CPUs a local Ray started here counts, as the search's own did (Ray honours a container's CPU quota,
    `os.cpu_count()` does not)."""
    ray.init(address="local", include_dashboard=False, configure_logging=False, log_to_driver=False)
    try:
        return int(ray.cluster_resources()["CPU"])
    finally:
        ray.shutdown()


def _assert_refused_before_anything(finished: subprocess.CompletedProcess, workdir: Path, *fragments: str) -> None:
    assert finished.returncode == 2, finished.stderr[-2000:]
    message = finished.stderr.strip().splitlines()[-1]
    assert message.startswith("error: ")
    for fragment in fragments:
        assert fragment in message
    assert not (workdir / "results").exists() and not (workdir / "mlflow.db").exists()


def test_bad_search_space_stops_before_anything(tmp_path: Path, shared_data_dir: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("search_space:\n  learning_rate: {type: loguniform, low: -1, high: 0.1}\n")
    finished = run_module("tuning.search", ["--config", str(space), "--data-dir", str(shared_data_dir)], cwd=tmp_path)
    _assert_refused_before_anything(finished, tmp_path, str(space), "search_space.learning_rate", "loguniform needs low > 0")


def test_unreachable_tracking_server_is_named(tmp_path: Path, shared_data_dir: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    finished = run_module("tuning.search", ["--tracking-uri", uri, "--data-dir", str(shared_data_dir)], cwd=tmp_path)
    _assert_refused_before_anything(finished, tmp_path, f"--tracking-uri {uri}", "unreachable")


def test_mlflow_refusing_the_login_is_named_and_nothing_is_written(tmp_path: Path, shared_data_dir: Path) -> None:
    server_dir, workdir = tmp_path / "server", tmp_path / "search"
    server_dir.mkdir()
    workdir.mkdir()
    admin = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": "the-admin-password-of-this-test"}
    server_environment = {"MLFLOW_AUTH_ADMIN_USERNAME": admin["MLFLOW_TRACKING_USERNAME"],
                          "MLFLOW_AUTH_ADMIN_PASSWORD": admin["MLFLOW_TRACKING_PASSWORD"], "MLFLOW_FLASK_SERVER_SECRET_KEY": "test"}
    with running_mlflow_server(["--app-name", "basic-auth", "--backend-store-uri", "sqlite:///mlflow.db"],
                               server_dir / "mlflow-server.log", **server_environment) as uri:
        for credentials in ({}, {**admin, "MLFLOW_TRACKING_PASSWORD": "wrong"}):
            finished = run_module("tuning.search", ["--tracking-uri", uri, "--data-dir", str(shared_data_dir)], cwd=workdir,
                                  **credentials)
            _assert_refused_before_anything(finished, workdir, f"--tracking-uri {uri}: MLflow refused the login (HTTP 401)",
                                            "MLFLOW_TRACKING_USERNAME")
        with pytest.MonkeyPatch.context() as patch:
            for name, value in admin.items():
                patch.setenv(name, value)
            client = MlflowClient(uri)
            assert [experiment.name for experiment in client.search_experiments()] == ["Default"]
            assert client.search_runs(["0"]) == []


def test_an_mlflow_answering_a_server_error_is_named_at_once_and_nothing_is_written(tmp_path: Path, shared_data_dir: Path) -> None:
    """A real MLflow server whose PostgreSQL went down answers HTTP 500 or 503: one line within a minute, not
    minutes of MLflow's retries."""
    server_dir, workdir = tmp_path / "server", tmp_path / "search"
    server_dir.mkdir()
    workdir.mkdir()
    with private_postgres() as database, running_mlflow_server(["--backend-store-uri", database.url],
                                                               server_dir / "mlflow-server.log") as uri:
        MlflowClient(uri).search_experiments()  # the server opens its store now, as one that has been up a while has
        database.stop()
        try:
            started = time.monotonic()
            finished = run_module("tuning.search", ["--tracking-uri", uri, "--data-dir", str(shared_data_dir)], cwd=workdir,
                                  timeout=300)
            waited = time.monotonic() - started
        finally:
            database.start()
        _assert_refused_before_anything(finished, workdir, f"--tracking-uri {uri}: MLflow answered HTTP 5", "a server error")
        assert waited < 60, f"the search took {waited:.0f} s to give up on an MLflow answering 500"
        assert [experiment.name for experiment in MlflowClient(uri).search_experiments()] == ["Default"]


@pytest.mark.parametrize(("flags", "message"), [
    (["--storage-path", "a-file/results"], "--storage-path a-file/results: {tmp}/a-file is a file, not a folder"),
    (["--storage-path", "/proc/nope"], "--storage-path /proc/nope: cannot create a folder in /proc (No such file or directory)"),
    (["--config", "."], "--config .: is a folder, not a search-space file"),
], ids=["a file in the way", "a folder that cannot be made", "a folder as the space"])
def test_an_unusable_path_is_named(tmp_path: Path, shared_data_dir: Path, flags: list[str], message: str) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    finished = run_module("tuning.search", [*flags, "--data-dir", str(shared_data_dir)], cwd=tmp_path)
    _assert_refused_before_anything(finished, tmp_path, message.format(tmp=tmp_path))


def test_malformed_data_is_named(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "fashion-mnist_train.csv").write_text("label,pixel1\n1,2\n")
    (tmp_path / "data" / "fashion-mnist_test.csv").write_text("")
    finished = run_module("tuning.search", ["--data-dir", "data"], cwd=tmp_path)
    _assert_refused_before_anything(finished, tmp_path, "fashion-mnist_train.csv", "line 1: wrong header")


def test_unknown_warm_start_study_is_named(tmp_path: Path, shared_data_dir: Path) -> None:
    finished = run_module("tuning.search", ["--warm-start", "nosuch", "--data-dir", str(shared_data_dir)], cwd=tmp_path)
    _assert_refused_before_anything(finished, tmp_path, f"--warm-start nosuch: no study of that name in sqlite:///{tmp_path.resolve() / 'optuna.db'}")
    assert not (tmp_path / "optuna.db").exists()


def test_unusable_study_storage_is_named_without_its_password(tmp_path: Path, shared_data_dir: Path) -> None:
    url = f"postgresql+psycopg2://fmnist:secret@127.0.0.1:{free_port()}/optuna"
    finished = run_module("tuning.search", ["--study-storage", url, "--data-dir", str(shared_data_dir)], cwd=tmp_path)
    _assert_refused_before_anything(finished, tmp_path, "--study-storage postgresql+psycopg2://fmnist:***@127.0.0.1:",
                                    "cannot open the study database")
    assert "secret" not in finished.stderr


@pytest.mark.parametrize(("flags", "message"), [
    (["--cpus-per-trial", "64"], "--cpus-per-trial 64: no Ray node has that many CPUs (the largest has "),
    (["--gpus-per-trial", "1"], "--gpus-per-trial 1: no Ray node has that many GPUs (the largest has 0; 1 nodes, 0 in all)"),
])
def test_a_trial_larger_than_any_node_is_refused_at_once(tmp_path: Path, shared_data_dir: Path, flags: list[str], message: str) -> None:
    finished = run_module("tuning.search", [*flags, "--data-dir", str(shared_data_dir)], cwd=tmp_path, timeout=300)
    _assert_refused_before_anything(finished, tmp_path, message)


def test_unreachable_ray_cluster_is_named(tmp_path: Path, shared_data_dir: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    finished = run_module("tuning.search", ["--address", address, "--data-dir", str(shared_data_dir)], cwd=tmp_path, timeout=300)
    _assert_refused_before_anything(finished, tmp_path, f"--address {address}", "cannot start or reach Ray")


@pytest.mark.slow
def test_trial_killed_mid_run_continues_from_its_checkpoint(shared_data_dir: Path, tmp_path: Path) -> None:
    """A real failure: the trial's worker process is killed after its first checkpoint."""
    search = subprocess.Popen(
        [sys.executable, "-m", "tuning.search", "--data-dir", str(shared_data_dir), "--train-size", "3000",
         "--num-samples", "1", "--max-epochs", "3", "--storage-path", "results", "--name", "killed"],
        cwd=tmp_path, env=search_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    experiment_dir = tmp_path / "results" / "killed"
    _first_checkpoint(experiment_dir, search)
    (result_file,) = experiment_dir.glob("trial-*/result.json")
    trial_pid = json.loads(result_file.read_text().splitlines()[0])["pid"]
    os.kill(trial_pid, signal.SIGKILL)
    _, stderr = search.communicate(timeout=600)
    assert search.returncode == 0, stderr[-3000:]
    results = [json.loads(line) for line in result_file.read_text().splitlines()]
    assert results[-1]["training_iteration"] == 3 and results[-1]["epoch"] == 3
    assert any(result["pid"] != trial_pid for result in results), "the trial was not restarted"
    restarted = [result for result in results if result["pid"] != trial_pid]
    assert restarted[0]["iterations_since_restore"] == 1 and restarted[0]["training_iteration"] > 1, (
        "the restarted trial began from scratch instead of its checkpoint"
    )
