"""Faults on the running platform in the middle of a search: each test counts what was lost and asserts zero.

Each test submits a small search as a Ray job (as `make search` does), breaks one service while its
trials train, lets the search finish, then compares every trial's epochs in Tune's results (the shared
volume) with its MLflow run: one run per trial, FINISHED, one `val_accuracy` point per epoch, in order.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

import pytest

from tests.platform.running_platform import (
    compose,
    container_state,
    dashboard_study,
    http_json,
    http_status,
    mlflow_login,
    settings,
    url,
    wait_for,
)

pytestmark = pytest.mark.docker
# the original layout's space: its trials train in seconds a core, where the default space's full-resolution ones take minutes
SMALL_SEARCH = ["--storage-path", "/results", "--config", "original", "--train-size", "4000", "--num-samples", "4",
                "--max-epochs", "2", "--grace-period", "2", "--max-concurrent-trials", "3"]
OUTAGE_S = 60
T = TypeVar("T")


def submit(name: str, search_args: list[str] = SMALL_SEARCH) -> str:
    """Submit the search `name` as a Ray job; returns the job id (`submitted <id>; ...`)."""
    submitted = compose("exec", "-T", "ray-head", "python", "-m", "tuning.jobs", "submit", "--", *search_args, "--name", name)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    return submitted.stdout.split()[1].rstrip(";")


def tune_epochs(name: str) -> dict[str, list[int]]:
    """Each trial's reported epochs, from Tune's result files on the results volume (read on the head)."""
    code = (f"import glob, json; print(json.dumps({{p.split('/')[-2]: [json.loads(l)['training_iteration'] for l in open(p) "
            f"if l.strip()] for p in glob.glob('/results/{name}/trial-*/result.json')}}))")
    finished = compose("exec", "-T", "ray-head", "python", "-c", code)
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout.strip().splitlines()[-1])


def epochs_so_far(name: str) -> int:
    return sum(len(epochs) for epochs in tune_epochs(name).values())


def finish(job_id: str) -> None:
    """Follow the search's job to its end; it must succeed."""
    followed = compose("exec", "-T", "ray-head", "python", "-m", "tuning.jobs", "logs", "--follow", job_id, timeout=1500)
    assert followed.returncode == 0, followed.stdout[-3000:] + followed.stderr[-2000:]


def assert_nothing_lost(name: str) -> None:
    """One FINISHED MLflow run per trial, whose `val_accuracy` history holds each of the trial's epochs once, up to its
    last in Tune's results, and a test score."""
    wait_for(lambda: http_status(url("MLFLOW_PORT", "5000", "/health")) == 200, 300, "MLflow")
    api, login = url("MLFLOW_PORT", "5000", "/api/2.0/mlflow"), mlflow_login()
    experiment_id = http_json(f"{api}/experiments/get-by-name?experiment_name=fmnist-tune", headers=login)["experiment"]["experiment_id"]
    (parent,) = http_json(f"{api}/runs/search", {"experiment_ids": [experiment_id],
                                                  "filter": f"attributes.run_name = '{name}'"}, login)["runs"]
    assert "test_accuracy" in {metric["key"] for metric in parent["data"]["metrics"]}
    runs = http_json(f"{api}/runs/search", {"experiment_ids": [experiment_id], "max_results": 100,
                                            "filter": f"tags.mlflow.parentRunId = '{parent['info']['run_id']}'"}, login)["runs"]
    trials = tune_epochs(name)
    assert sorted(run["info"]["run_name"] for run in runs) == sorted(trials), "one MLflow run per trial"
    for run in runs:
        assert run["info"]["status"] == "FINISHED", run["info"]
        history = http_json(f"{api}/metrics/get-history?run_id={run['info']['run_id']}&metric_key=val_accuracy",
                            headers=login)["metrics"]
        steps, tune_steps = sorted(point["step"] for point in history), set(trials[run["info"]["run_name"]])
        # each epoch once, in order, up to Tune's last; a worker killed between a trial's report and the driver's
        # receipt leaves that epoch (checkpointed, logged by the trial) in MLflow but not in Tune's result file
        assert steps == list(range(1, max(tune_steps) + 1)), (run["info"], steps, sorted(tune_steps))


def search_through(kind: str, fault: Callable[[str], T], epochs_before: int = 1) -> T:
    """Submit a small search, apply `fault` to it (given its name) once `epochs_before` epochs are in, follow
    the search to its end and check nothing was lost; returns what `fault` returned."""
    name = time.strftime(f"fault-{kind}-%H%M%S")
    job_id = submit(name)
    wait_for(lambda: epochs_so_far(name) >= epochs_before, 600, "the search's first epochs")
    outcome = fault(name)
    finish(job_id)
    assert_nothing_lost(name)
    return outcome


def stop_mlflow_for_a_while(name: str) -> None:
    """Stop MLflow for OUTAGE_S; epochs must keep finishing meanwhile."""
    assert compose("stop", "mlflow").returncode == 0
    try:
        before = epochs_so_far(name)
        time.sleep(OUTAGE_S)
        during = epochs_so_far(name)
    finally:
        assert compose("start", "mlflow").returncode == 0
    assert during > before, f"no epoch finished while MLflow was down ({before} before, {during} after {OUTAGE_S} s)"


def restart_postgres(name: str) -> None:
    """`docker-compose restart postgres`; PostgreSQL's log must show a clean shutdown and no crash recovery."""
    since = str(int(time.time()) - 1)
    restarted = compose("restart", "postgres", timeout=120)
    assert restarted.returncode == 0, restarted.stderr
    (container,) = compose("ps", "-q", "postgres").stdout.split()

    def log_since_restart() -> str:
        logs = subprocess.run(["docker", "logs", "--since", since, container], capture_output=True, text=True, check=True)
        return logs.stdout + logs.stderr

    wait_for(lambda: "ready to accept connections" in log_since_restart(), 120, "PostgreSQL to start again")
    log = log_since_restart()
    assert "database system is shut down" in log and "database system was shut down at" in log, f"no clean shutdown: {log[-1500:]}"
    assert "not properly shut down" not in log, "PostgreSQL stopped uncleanly"


def kill_a_worker(name: str) -> str:
    """SIGKILL a Ray worker container's main process from the host, as in a crash; returns the container."""
    worker = compose("ps", "-q", "ray-worker").stdout.split()[0]
    pid = subprocess.run(["docker", "inspect", "--format", "{{.State.Pid}}", worker], capture_output=True, text=True,
                         check=True).stdout.strip()
    subprocess.run(["kill", "-9", pid], check=True)
    return worker


def kill_the_driver(name: str) -> None:
    """SIGKILL the search's driver (the job's `python -m tuning.search` process on the head), as in a crash."""
    code = ("import os, signal\n"
            "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
            "    try: argv = open(f'/proc/{pid}/cmdline', 'rb').read().split(b'\\0')\n"
            "    except OSError: continue\n"
            f"    if b'tuning.search' in argv and {name.encode()!r} in argv: os.kill(int(pid), signal.SIGKILL); print(pid)\n")
    killed = compose("exec", "-T", "ray-head", "python", "-c", code)
    assert killed.returncode == 0 and killed.stdout.split(), f"no driver of {name} found: {killed.stdout}{killed.stderr}"


def job_status(job_id: str) -> str:
    return compose("exec", "-T", "ray-head", "python", "-m", "tuning.jobs", "status", job_id).stdout


def resume_with_nothing_lost(name: str) -> None:
    """`--resume` the search `name` as a new job: it must finish with nothing lost, in the same Optuna study."""
    finish(submit(name, ["--resume", "--storage-path", "/results"]))
    assert_nothing_lost(name)
    states = [trial["state"] for trial in dashboard_study(name)["trials"]]
    finished = [state for state in states if state in ("Complete", "Pruned")]
    assert len(finished) == len(tune_epochs(name)) == 4, states  # the same study: one finished Optuna trial per Tune trial
    assert set(states) <= {"Complete", "Pruned"}, states  # a trial started after the last save was taken up, not failed


def alive_ray_nodes() -> int:
    """The Ray nodes the head counts alive, from its dashboard's API (0 while it cannot answer).

    An HTTP request, not a `ray.init` on the head: the nodes rejoining must not compete with the test for CPU."""
    try:
        summary = http_json(url("RAY_DASHBOARD_PORT", "8265", "/nodes?view=summary"),
                            headers={"Authorization": f"Bearer {settings()['RAY_AUTH_TOKEN']}"})["data"]["summary"]
    except (OSError, ValueError, KeyError):
        return 0
    return sum(node["raylet"]["state"] == "ALIVE" for node in summary)


def test_a_driver_killed_mid_search_resumes_with_nothing_lost() -> None:
    name = time.strftime("fault-driver-%H%M%S")
    job_id = submit(name)
    wait_for(lambda: epochs_so_far(name) >= 1, 600, "the search's first epoch")
    kill_the_driver(name)
    wait_for(lambda: "FAILED" in job_status(job_id), 120, "the killed driver's job to end as FAILED")
    resume_with_nothing_lost(name)


def test_a_restarted_ray_head_loses_the_driver_and_resume_loses_nothing() -> None:
    """The head holds the GCS and the job's driver: both die with it. The workers rejoin the new head by
    themselves, and `--resume` from the results volume finishes the search."""
    name = time.strftime("fault-head-%H%M%S")
    submit(name)
    wait_for(lambda: epochs_so_far(name) >= 1, 600, "the search's first epoch")
    epochs_before, restarted_at = epochs_so_far(name), time.monotonic()
    assert compose("restart", "ray-head", timeout=300).returncode == 0
    wait_for(lambda: alive_ray_nodes() == 3, 600, "the head and both workers to form the cluster again")
    print(f"\nthe cluster was whole again {time.monotonic() - restarted_at:.0f} s after the restart began; "
          f"{epochs_before} epochs were in")
    resume_with_nothing_lost(name)
    replayed = sum(len(epochs) - len(set(epochs)) for epochs in tune_epochs(name).values())
    print(f"epochs run again after the resume: {replayed}")


def test_mlflow_stopped_for_a_minute_mid_search_costs_nothing() -> None:
    search_through("mlflow", stop_mlflow_for_a_while)


def test_postgres_restarted_mid_search_costs_nothing() -> None:
    search_through("postgres", restart_postgres)


def test_a_killed_ray_worker_costs_nothing_and_comes_back() -> None:
    worker = search_through("worker", kill_a_worker, epochs_before=2)
    wait_for(lambda: container_state(worker)[0] == "healthy", 300, "the killed worker to come back healthy")
    assert int(container_state(worker)[1]) >= 1, "the worker came back by its restart policy"

