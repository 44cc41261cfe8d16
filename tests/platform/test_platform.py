"""The docker-compose platform, running: a search spread over Ray nodes, seen in every service.

Needs the platform started (`make build start`, or `make platform-test`, which also tears it down).
Selected with `pytest -m docker`; the default test run deselects it.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import urllib.error
import urllib.request

import mlflow
import numpy as np
import pytest

from tests.conftest import REPOSITORY
from tests.platform.running_platform import (
    compose,
    dashboard_studies,
    dashboard_study,
    http_json,
    http_status,
    mlflow_login,
    settings,
    url,
)
from tuning.champion.load import run_load

pytestmark = pytest.mark.docker
SEARCH_NAME = time.strftime("platform-test-%Y%m%d-%H%M%S")
TRIALS = 4
SERVICES_WITH_PORTS = ("mlflow", "ray-head", "tensorboard", "optuna-dashboard", "notebook")
SECRET_SETTINGS = ("POSTGRES_PASSWORD", "RAY_AUTH_TOKEN", "JUPYTER_TOKEN", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY")
IMAGES = ("fmnist-tune/python:latest", "fmnist-tune/postgres:latest")


@pytest.fixture(scope="module", autouse=True)
def mlflow_client_login() -> object:
    """MLflow's Python client logs in from its environment variables, as the platform's services do."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_USERNAME", settings().get("MLFLOW_TRACKING_USERNAME", "admin"))
        patch.setenv("MLFLOW_TRACKING_PASSWORD", settings()["MLFLOW_TRACKING_PASSWORD"])
        yield


@pytest.fixture(scope="module")
def search_output() -> str:
    """A real search on the cluster, submitted as a Ray job (as `make search` does) and followed to its end; in the
    packaged original space, whose trials train about 4x the images/s of the default's first point."""
    finished = compose(
        "exec", "-T", "ray-head", "python", "-m", "tuning.jobs", "submit", "--follow", "--", "--storage-path", "/results",
        "--name", SEARCH_NAME, "--config", "original", "--train-size", "12000", "--num-samples", str(TRIALS), "--max-epochs", "3",
        "--grace-period", "1", "--reduction-factor", "2", "--max-concurrent-trials", "3",
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    return finished.stdout


def test_the_search_job_is_listed_and_its_console_fits_a_terminal(search_output: str) -> None:
    status = compose("exec", "-T", "ray-head", "python", "-m", "tuning.jobs", "status")
    assert status.returncode == 0 and status.stdout.startswith(SEARCH_NAME) and "SUCCEEDED" in status.stdout, status
    progress = search_output[search_output.index("\n== ") : search_output.index("\nTop ")]  # after Ray's job lines
    assert progress.count("\ntrial ") >= 2, search_output[-2000:]
    longest = max(progress.splitlines(), key=len)
    assert len(longest) <= 120, longest
    for noise in ("oneDNN", "absl::InitializeLog", "Failed to import Git", "━━", "View run", "INFO mlflow"):
        assert noise not in search_output, noise


def test_a_search_job_stops_on_request_and_its_run_ends_killed(search_output: str) -> None:
    submitted = compose("exec", "-T", "ray-head", "python", "-m", "tuning.jobs", "submit", "--", "--storage-path",
                        "/results", "--smoke-test")
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.split()[1].rstrip(";")
    api, login = url("MLFLOW_PORT", "5000", "/api/2.0/mlflow"), mlflow_login()
    experiment_id = http_json(f"{api}/experiments/get-by-name?experiment_name=fmnist-tune", headers=login)["experiment"]["experiment_id"]

    def search_run() -> list[dict]:
        return http_json(f"{api}/runs/search", {"experiment_ids": [experiment_id],
                                                "filter": f"attributes.run_name = '{job_id}'"}, login).get("runs", [])

    deadline = time.monotonic() + 300
    while not search_run():  # stopped once its MLflow run exists, as a user stops a search that has started
        assert time.monotonic() < deadline, "the search never created its MLflow run"
        time.sleep(2)
    stopped = compose("exec", "-T", "ray-head", "python", "-m", "tuning.jobs", "stop", job_id)
    assert stopped.returncode == 0 and stopped.stdout.startswith(job_id), stopped
    assert f"{job_id}: MLflow run KILLED" in stopped.stdout, stopped.stdout
    assert search_run()[0]["info"]["status"] == "KILLED"
    deadline = time.monotonic() + 120
    while "STOPPED" not in (status := compose("exec", "-T", "ray-head", "python", "-m", "tuning.jobs", "status", job_id)).stdout:
        assert time.monotonic() < deadline, status.stdout
        time.sleep(3)


def test_optuna_dashboard_shows_the_stored_study(search_output: str) -> None:
    study = dashboard_study(SEARCH_NAME)
    assert len(study["trials"]) == TRIALS and study["has_intermediate_values"]
    states = [trial["state"] for trial in study["trials"]]
    assert all(state in ("Complete", "Pruned") for state in states), states
    for trial in study["trials"]:
        steps = [point["step"] for point in trial["intermediate_values"]]
        assert steps == list(range(1, len(steps) + 1)) and 1 <= len(steps) <= 3, trial
        assert len(steps) == 3 or trial["state"] == "Pruned", trial


def test_trials_ran_on_several_ray_nodes(search_output: str) -> None:
    code = (
        "import glob, json; print(json.dumps(sorted({json.loads(line)['node_ip'] "
        f"for path in glob.glob('/results/{SEARCH_NAME}/trial-*/result.json') for line in open(path)}})))"
    )
    finished = compose("exec", "-T", "ray-head", "python", "-c", code)
    nodes = json.loads(finished.stdout.strip().splitlines()[-1])
    assert len(nodes) >= 2, f"all trials ran on {nodes}"


def test_mlflow_rest_api_holds_the_runs_and_a_champion(search_output: str) -> None:
    api = url("MLFLOW_PORT", "5000", "/api/2.0/mlflow")
    login = mlflow_login()
    experiment = http_json(f"{api}/experiments/get-by-name?experiment_name=fmnist-tune", headers=login)["experiment"]
    parents = http_json(f"{api}/runs/search", {"experiment_ids": [experiment["experiment_id"]],
                                               "filter": f"attributes.run_name = '{SEARCH_NAME}'"}, login)["runs"]
    assert len(parents) == 1
    parent_id = parents[0]["info"]["run_id"]
    trials = http_json(f"{api}/runs/search", {"experiment_ids": [experiment["experiment_id"]],
                                              "filter": f"tags.mlflow.parentRunId = '{parent_id}'"}, login)["runs"]
    assert len(trials) == TRIALS
    for run in trials:
        keys = {metric["key"] for metric in run["data"]["metrics"]}
        assert {"val_accuracy", "val_precision", "val_recall", "val_f1"} <= keys
    champion = http_json(f"{api}/registered-models/alias?name=fmnist-cnn&alias=champion", headers=login)["model_version"]
    assert champion["name"] == "fmnist-cnn" and int(champion["version"]) >= 1


def test_tensorboard_lists_every_trial(search_output: str) -> None:
    runs = http_json(url("TENSORBOARD_PORT", "6006", "/data/runs"))
    trial_runs = [run for run in runs if run.startswith(f"{SEARCH_NAME}/trial-")]
    assert len(trial_runs) == TRIALS, runs


def test_notebook_runs_a_search_and_compares_runs(search_output: str) -> None:
    code = (
        "import json, nbformat, nbclient; nb = nbformat.read('notebooks/search.ipynb', as_version=4); "
        "nbclient.NotebookClient(nb, timeout=1800, kernel_name='python3', "
        "resources={'metadata': {'path': 'notebooks'}}).execute(); "
        "print(json.dumps([{'source': c.source, 'outputs': c.get('outputs', [])} for c in nb.cells if c.cell_type == 'code']))"
    )
    finished = compose("exec", "-T", "notebook", "python", "-c", code)
    assert finished.returncode == 0, finished.stdout[-2000:] + finished.stderr[-4000:]
    cells = json.loads(finished.stdout.strip().splitlines()[-1])
    for cell in cells:
        kinds = [(output["output_type"], output.get("name")) for output in cell["outputs"]]
        assert ("error", None) not in kinds and ("stream", "stderr") not in kinds, cell
        if "plot_" in cell["source"]:
            images = [output for output in cell["outputs"] if "image/png" in output.get("data", {})]
            assert images, f"no image from: {cell['source']}"
    printed = "".join(output.get("text", "") for cell in cells for output in cell["outputs"])
    for port, default in (("MLFLOW_PORT", "5000"), ("TENSORBOARD_PORT", "6006"), ("OPTUNA_DASHBOARD_PORT", "8080")):
        assert url(port, default, "") in printed, f"the notebook shows no address with {port} from .env"


def serve_champion() -> None:
    """Start the model server (profile `serve`) and wait until it answers /ping."""
    started = compose("--profile", "serve", "up", "-d", "model-server")
    assert started.returncode == 0, started.stderr[-2000:]
    deadline = time.monotonic() + 600
    while http_status(url("MODEL_SERVER_PORT", "5001", "/ping")) != 200:
        assert time.monotonic() < deadline, compose("logs", "--tail", "40", "model-server").stdout
        time.sleep(3)


def test_model_server_classifies_real_test_images(search_output: str, dataset) -> None:
    serve_champion()
    images, labels = dataset.test.images[:200], dataset.test.labels[:200]
    answer = http_json(url("MODEL_SERVER_PORT", "5001", "/invocations"), {"inputs": images.astype(float).tolist()})
    served = np.asarray(answer["predictions"]).argmax(axis=1)
    mlflow.set_tracking_uri(url("MLFLOW_PORT", "5000", ""))
    champion = mlflow.pyfunc.load_model("models:/fmnist-cnn@champion")
    np.testing.assert_array_equal(served, np.asarray(champion.predict(images.astype(np.float32))).argmax(axis=1))
    accuracy = float(np.mean(served == labels))
    assert accuracy >= 0.6, f"the champion classified {accuracy:.1%} of 200 real test images correctly"


LOAD_CLIENTS, LOAD_SECONDS, LOAD_P99_MS, LOAD_IMAGES = 16, 60.0, 1000.0, 16
"""A minute of 16 clients on the 2-core host that also runs the whole platform, each sending in turn JSON, a PNG and a
.npy batch of 16 images: the bound leaves room for its noise."""


def model_server_memory_mb() -> float:
    status = compose("exec", "-T", "model-server", "cat", "/proc/1/status").stdout
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) / 1024


def test_model_server_holds_a_minute_of_load(search_output: str, dataset) -> None:
    """Many clients for a minute of mixed requests while a search trains beside them: no error, a bounded p99, every
    answer from the champion, memory flat, and the search ends well."""
    serve_champion()
    api, login = url("MLFLOW_PORT", "5000", "/api/2.0/mlflow"), mlflow_login()
    champion = http_json(f"{api}/registered-models/alias?name=fmnist-cnn&alias=champion", headers=login)["model_version"]
    run_load(url("MODEL_SERVER_PORT", "5001", ""), dataset.test.images[:1], clients=2, seconds=5)  # warm
    before = model_server_memory_mb()
    beside = compose("exec", "-T", "ray-head", "python", "-m", "tuning.jobs", "submit", "--", "--storage-path", "/results",
                     "--smoke-test", "--num-samples", "3", "--model-name", "fmnist-cnn-beside-load")
    assert beside.returncode == 0, beside.stderr
    result = run_load(url("MODEL_SERVER_PORT", "5001", ""), dataset.test.images[:LOAD_IMAGES], LOAD_CLIENTS, LOAD_SECONDS,
                      body="mixed")
    after = model_server_memory_mb()
    print(f"model server under load beside a search: {result.line()}; memory {before:.0f} MB -> {after:.0f} MB")
    job_id, deadline = beside.stdout.split()[1].rstrip(";"), time.monotonic() + 600
    while "SUCCEEDED" not in (status := compose("exec", "-T", "ray-head", "python", "-m", "tuning.jobs", "status", job_id)).stdout:
        assert time.monotonic() < deadline and "FAILED" not in status.stdout, status.stdout
        time.sleep(3)
    assert result.requests > 600 and not result.errors, result.line()
    assert result.percentile_ms(99) <= LOAD_P99_MS, result.line()
    assert set(result.versions) == {str(champion["version"])}
    assert after <= before * 1.10 + 20, f"memory grew under load: {before:.0f} MB -> {after:.0f} MB"


BAD_REQUESTS = {
    "malformed JSON": ("application/json", b'{"inputs": [[1, 2, 3]', 400, "the body is not JSON"),
    "deeply nested JSON": ("application/json", b"[" * 100_000 + b"]" * 100_000, 400, "nested too deeply"),
    "not an image": ("image/png", b"%PDF-1.4", 400, "not a PNG or JPEG image"),
    "empty upload": ("image/jpeg", b"", 400, "the image is empty"),
    "wrong shape": ("application/json", b'{"inputs": [[1, 2, 3]]}', 400, "does not match"),
    "wrong dtype": ("application/json", json.dumps({"inputs": [[["a"] * 28] * 28]}).encode(), 400, "could not convert"),
    "no inputs": ("application/json", b'{"nothing": 1}', 400, ""),
    "pixels out of range": ("application/json", json.dumps({"inputs": [[[300.0] * 28] * 28]}).encode(), 400, "in 0..255"),
    "unsupported content type": ("text/plain", b"hello", 415, "Content-Type text/plain: send image/png"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_model_server_answers_bad_requests_with_a_4xx_and_stays_up(search_output: str, case: str) -> None:
    content_type, body, status, fragment = BAD_REQUESTS[case]
    serve_champion()
    request = urllib.request.Request(url("MODEL_SERVER_PORT", "5001", "/invocations"), data=body,
                                     headers={"Content-Type": content_type})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=60)
    answer = refused.value.read().decode()
    assert refused.value.code == status and fragment in answer, answer
    assert len(answer) <= 400 and "[[" not in answer, f"the answer repeats the request: {answer[:200]}"
    assert http_status(url("MODEL_SERVER_PORT", "5001", "/ping")) == 200


def test_published_ports_bind_loopback_only(search_output: str) -> None:
    containers = compose("ps", "-q").stdout.split()
    published = []
    for container in containers:
        ports = json.loads(subprocess.run(["docker", "inspect", "--format", "{{json .NetworkSettings.Ports}}", container],
                                          capture_output=True, text=True, check=True).stdout) or {}
        published += [binding["HostIp"] for bindings in ports.values() if bindings for binding in bindings]
    assert len(published) >= len(SERVICES_WITH_PORTS)
    assert set(published) == {"127.0.0.1"}


def test_secrets_are_required(search_output: str) -> None:
    assert http_status(url("RAY_DASHBOARD_PORT", "8265", "/api/jobs/")) in (401, 403)
    token = {"Authorization": f"Bearer {settings()['RAY_AUTH_TOKEN']}"}
    assert http_status(url("RAY_DASHBOARD_PORT", "8265", "/api/jobs/"), token) == 200
    assert http_status(url("JUPYTER_PORT", "8888", "/api/contents")) == 403
    assert http_status(url("JUPYTER_PORT", "8888", f"/api/contents?token={settings()['JUPYTER_TOKEN']}")) == 200
    experiments = url("MLFLOW_PORT", "5000", "/api/2.0/mlflow/experiments/get-by-name?experiment_name=fmnist-tune")
    assert http_status(experiments) == 401
    assert http_status(experiments, {"Authorization": "Basic " + base64.b64encode(b"admin:wrong").decode()}) == 401
    assert http_status(experiments, {**mlflow_login(), "Host": "attacker.example"}) == 403
    assert http_status(experiments, mlflow_login()) == 200


def test_mlflow_refuses_anonymous_writes(search_output: str) -> None:
    api = url("MLFLOW_PORT", "5000", "/api/2.0/mlflow")
    with pytest.raises(urllib.error.HTTPError) as refused:
        http_json(f"{api}/experiments/create", {"name": "written-by-anyone"})
    assert refused.value.code == 401
    assert http_status(f"{api}/experiments/get-by-name?experiment_name=written-by-anyone", mlflow_login()) == 404


def test_no_secret_is_on_any_command_line(search_output: str) -> None:
    secrets = {name: settings()[name] for name in SECRET_SETTINGS}
    list_command_lines = 'for f in /proc/[0-9]*/cmdline; do tr "\\0" " " < "$f"; echo; done'
    services = ("postgres", "mlflow", "ray-head", "ray-worker", "tensorboard", "optuna-dashboard", "notebook")
    for service in services:
        finished = compose("exec", "-T", "--index=1", service, "sh", "-c", list_command_lines)
        assert finished.returncode == 0 and finished.stdout.strip(), (service, finished.stderr)
        for name, secret in secrets.items():
            assert secret not in finished.stdout, f"{name} is on a command line in {service}"


def test_no_secret_is_in_git_or_in_an_image(search_output: str) -> None:
    assert ".env" not in subprocess.run(["git", "ls-files"], cwd=REPOSITORY, capture_output=True, text=True, check=True).stdout.split()
    layers_and_configs = "".join(
        subprocess.run(command, capture_output=True, text=True, check=True).stdout
        for image in IMAGES for command in (["docker", "history", "--no-trunc", image], ["docker", "image", "inspect", image])
    )
    assert all(image in layers_and_configs for image in IMAGES)  # `docker image inspect` lists each image's tag
    for name in SECRET_SETTINGS:
        in_git = subprocess.run(["git", "grep", "-F", "-l", "-e", settings()[name]], cwd=REPOSITORY, capture_output=True, text=True,
                                check=False)
        assert in_git.returncode == 1, f"{name} is in tracked files: {in_git.stdout}"
        assert settings()[name] not in layers_and_configs, f"{name} is in an image's layers or config"


def test_services_run_as_non_root(search_output: str) -> None:
    for service in ("mlflow", "ray-head", "ray-worker", "tensorboard", "optuna-dashboard", "notebook"):
        finished = compose("exec", "-T", "--index=1", service, "id", "-u")
        assert finished.returncode == 0 and finished.stdout.strip() != "0", (service, finished.stdout, finished.stderr)
    assert compose("exec", "-T", "postgres", "id", "-un").stdout.strip() == "postgres"


def platform_inventory() -> dict[str, object]:
    """What a user keeps on the platform: MLflow's runs (status and latest metrics), the model's versions and
    aliases, each Optuna study's trials, and TensorBoard's runs."""
    api, login = url("MLFLOW_PORT", "5000", "/api/2.0/mlflow"), mlflow_login()
    experiment_id = http_json(f"{api}/experiments/get-by-name?experiment_name=fmnist-tune", headers=login)["experiment"]["experiment_id"]
    runs = http_json(f"{api}/runs/search", {"experiment_ids": [experiment_id], "max_results": 1000}, login)["runs"]
    versions = http_json(f"{api}/model-versions/search?filter=name%3D%27fmnist-cnn%27", headers=login)["model_versions"]
    model = http_json(f"{api}/registered-models/get?name=fmnist-cnn", headers=login)["registered_model"]
    return {
        "runs": sorted((run["info"]["run_id"], run["info"]["status"], json.dumps(run["data"].get("metrics", []), sort_keys=True))
                       for run in runs),
        "versions": sorted((version["version"], version["run_id"]) for version in versions),
        "aliases": sorted((alias["alias"], alias["version"]) for alias in model.get("aliases", [])),
        "studies": sorted((name, len(dashboard_study(name)["trials"])) for name in dashboard_studies()),
        "tensorboard runs": sorted(http_json(url("TENSORBOARD_PORT", "6006", "/data/runs"))),
    }


def test_a_full_platform_restart_keeps_every_run_model_study_and_log(search_output: str) -> None:
    """`make stop` then `make start` (what they run): the named volumes keep everything. Runs last: it restarts every service."""
    before = platform_inventory()
    assert before["runs"] and before["versions"] and before["aliases"] and before["studies"] and before["tensorboard runs"]
    stopped = compose("--profile", "serve", "down")
    assert stopped.returncode == 0, stopped.stderr[-2000:]
    started = compose("up", "-d", "--scale", "ray-worker=2")
    assert started.returncode == 0, started.stderr[-2000:]
    healthy = subprocess.run(["bash", "platform/wait-healthy.sh", "300"], cwd=REPOSITORY, capture_output=True, text=True, check=False)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    deadline = time.monotonic() + 180  # TensorBoard lists runs as it reloads the logs
    while (after := platform_inventory()) != before and time.monotonic() < deadline:
        time.sleep(5)
    for part, kept in before.items():
        assert after[part] == kept, f"{part} changed across the restart"
    log = compose("exec", "-T", "ray-head", "python", "-m", "tuning.jobs", "logs", "--storage-path", "/results", SEARCH_NAME)
    assert log.returncode == 0 and "Test set: accuracy" in log.stdout, log.stdout[-2000:] + log.stderr[-2000:]
