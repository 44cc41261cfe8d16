"""`python -m tuning.dashboard`: optuna-dashboard on the study database, as a user starts it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from tests.tuning.conftest import run_module, search_environment
from tuning.testing.services import free_port

pytestmark = pytest.mark.slow  # starts optuna-dashboard's server


def test_the_dashboard_serves_the_stored_studies(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(storage=url, study_name="earlier", direction="maximize")
    study.add_trial(optuna.trial.create_trial(
        value=0.9, params={"learning_rate": 0.001},
        distributions={"learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)},
        intermediate_values={1: 0.8, 2: 0.9},
    ))
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tuning.dashboard", "--port", str(port)], cwd=tmp_path,
                              env=search_environment(OPTUNA_STORAGE=url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as response:
                    summaries = json.loads(response.read())["study_summaries"]
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, server.stderr.read() if server.stderr else ""
                time.sleep(0.5)
        assert [summary["study_name"] for summary in summaries] == ["earlier"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{summaries[0]['study_id']}", timeout=10) as response:
            trial = json.loads(response.read())["trials"][0]
        assert trial["intermediate_values"] == [{"step": 1, "value": 0.8}, {"step": 2, "value": 0.9}]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_an_unusable_study_database_is_one_line(tmp_path: Path) -> None:
    finished = run_module("tuning.dashboard", ["--study-storage", "sqlite:////no/such/folder/optuna.db"], cwd=tmp_path)
    assert finished.returncode == 2
    expected = ("error: --study-storage sqlite:////no/such/folder/optuna.db: cannot open the study database "
                "((sqlite3.OperationalError) unable to open database file)")
    assert finished.stderr.strip().splitlines() == [expected]
