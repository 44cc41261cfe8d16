"""The running compose platform as the tests reach it: its .env, its published ports, `docker-compose`."""

from __future__ import annotations

import base64
import functools
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from tests.conftest import REPOSITORY

COMPOSE = os.environ.get("COMPOSE", "docker-compose").split()


@functools.cache
def settings() -> dict[str, str]:
    """The platform's .env (ports and secrets)."""
    lines = (REPOSITORY / ".env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def mlflow_login() -> dict[str, str]:
    """The Authorization header of MLflow's admin user (.env)."""
    credentials = f"{settings().get('MLFLOW_TRACKING_USERNAME', 'admin')}:{settings()['MLFLOW_TRACKING_PASSWORD']}"
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


def url(port_setting: str, default: str, path: str) -> str:
    """A published service's URL on 127.0.0.1, its port from .env."""
    return f"http://127.0.0.1:{settings().get(port_setting, default)}{path}"


def compose(*arguments: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    """`docker-compose ARGUMENTS` in the repository, output captured, never raising on a non-zero exit."""
    return subprocess.run([*COMPOSE, *arguments], cwd=REPOSITORY, capture_output=True, text=True, timeout=timeout, check=False)


def http_json(url: str, payload: dict | None = None, headers: dict[str, str] | None = None) -> dict:
    """GET (or POST `payload`) and parse the JSON answer; an HTTP error raises."""
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def http_status(url: str, headers: dict[str, str] | None = None) -> int:
    """The HTTP status of a GET, or 0 when nothing answers."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:  # not listening yet: refused, or reset by docker's port proxy
        return 0


def dashboard_studies() -> dict[str, int]:
    """Study name -> study id, as optuna-dashboard reads them from the platform's PostgreSQL."""
    summaries = http_json(url("OPTUNA_DASHBOARD_PORT", "8080", "/api/studies"))["study_summaries"]
    return {summary["study_name"]: summary["study_id"] for summary in summaries}


def dashboard_study(name: str) -> dict:
    """One stored study as optuna-dashboard's API shows it: its trials with their states and intermediate values."""
    return http_json(url("OPTUNA_DASHBOARD_PORT", "8080", f"/api/studies/{dashboard_studies()[name]}"))


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Check `condition` every 3 s until it holds; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(3)


def container_state(container: str) -> tuple[str, str]:
    """A container's health and restart count."""
    health, restarts = subprocess.run(["docker", "inspect", "--format", "{{.State.Health.Status}} {{.RestartCount}}", container],
                                      capture_output=True, text=True, check=True).stdout.split()
    return health, restarts
