"""An MLflow upgrade on an existing database: the platform's mlflow service, started on a database that an
older MLflow wrote, migrates it (`mlflow db upgrade` in its command) and serves what was there.

The older MLflow is the last 2.x release, from PyPI, run in the platform's own image beside the new one
(it needs SQLAlchemy 2.0, so that comes with it). It writes to a database of its own on the platform's
PostgreSQL, which the test drops at the end: the platform's own runs are never touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.platform.running_platform import compose, container_state, settings, wait_for

pytestmark = pytest.mark.docker
OLD_MLFLOW = ["mlflow-skinny==2.22.1", "sqlalchemy>=2.0,<2.1"]
DATABASE = "mlflow_upgrade_test"
SERVER = "fmnist-tune-test-mlflow-upgrade"
WRITE_WITH_OLD_MLFLOW = """
import sys
import mlflow
from mlflow import MlflowClient
client = MlflowClient(tracking_uri=sys.argv[1], registry_uri=sys.argv[1])
run = client.create_run(client.create_experiment("written-by-mlflow-2"), run_name="trained-with-mlflow-2")
for epoch, value in enumerate([0.81, 0.86, 0.88], start=1):
    client.log_metric(run.info.run_id, "val_accuracy", value, step=epoch)
client.log_param(run.info.run_id, "learning_rate", "0.001")
client.set_terminated(run.info.run_id)
client.create_registered_model("cnn-from-mlflow-2")
client.create_model_version("cnn-from-mlflow-2", source="/mlflow/artifacts/old/model", run_id=run.info.run_id)
client.set_registered_model_alias("cnn-from-mlflow-2", "champion", "1")
print(mlflow.__version__, run.info.run_id)
"""
READ_WITH_NEW_MLFLOW = """
import json, os
os.environ["MLFLOW_TRACKING_USERNAME"] = os.environ["MLFLOW_AUTH_ADMIN_USERNAME"]
os.environ["MLFLOW_TRACKING_PASSWORD"] = os.environ["MLFLOW_AUTH_ADMIN_PASSWORD"]
import mlflow
from mlflow import MlflowClient
client = MlflowClient("http://127.0.0.1:5000")
run = client.search_runs([client.get_experiment_by_name("written-by-mlflow-2").experiment_id])[0]
version = client.get_model_version_by_alias("cnn-from-mlflow-2", "champion")
print(json.dumps({"mlflow": mlflow.__version__, "run_id": run.info.run_id, "status": run.info.status,
                  "params": run.data.params, "history": [(point.step, point.value) for point in
                  client.get_metric_history(run.info.run_id, "val_accuracy")],
                  "champion": [version.version, version.run_id]}))
"""


def psql(database: str, sql: str) -> str:
    """One SQL statement on the platform's PostgreSQL (local socket, as its superuser); its output, unaligned."""
    answered = compose("exec", "-T", "postgres", "psql", "-U", "postgres", "-d", database, "-tAc", sql, timeout=120)
    assert answered.returncode == 0, answered.stderr
    return answered.stdout.strip()


@pytest.fixture
def old_mlflow() -> Iterator[Path]:
    """A folder, readable by the image's user, holding the older MLflow unpacked and the script it runs."""
    with tempfile.TemporaryDirectory() as folder:
        wheels, unpacked = Path(folder) / "wheels", Path(folder) / "old-mlflow"
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                        "-d", str(wheels), *OLD_MLFLOW], check=True, timeout=600)
        for wheel in wheels.glob("*.whl"):
            zipfile.ZipFile(wheel).extractall(unpacked)
        (unpacked / "write.py").write_text(WRITE_WITH_OLD_MLFLOW)
        for path in [Path(folder), *Path(folder).rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        yield unpacked


@pytest.fixture
def upgrade_database() -> Iterator[str]:
    """An empty database beside the platform's own; its SQLAlchemy URI (no password: libpq reads PGPASSWORD)."""
    psql("postgres", f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    owner = settings().get("POSTGRES_USER", "mlflow")
    psql("postgres", f'CREATE DATABASE {DATABASE} OWNER "{owner}"')
    try:
        yield f"postgresql+psycopg2://{owner}@postgres:5432/{DATABASE}"
    finally:
        logs = subprocess.run(["docker", "logs", "--tail", "30", SERVER], capture_output=True, text=True, check=False)
        print(logs.stdout + logs.stderr)  # pytest shows it when the test failed
        subprocess.run(["docker", "rm", "-f", SERVER], capture_output=True, check=False)
        psql("postgres", f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def test_the_mlflow_service_migrates_a_database_an_older_mlflow_wrote(old_mlflow: Path, upgrade_database: str) -> None:
    written = compose("run", "--rm", "-T", "-v", f"{old_mlflow}:/old-mlflow:ro", "-e", "PYTHONPATH=/old-mlflow",
                      "mlflow", "python", "/old-mlflow/write.py", upgrade_database, timeout=600)
    assert written.returncode == 0, written.stderr[-3000:]
    old_version, run_id = written.stdout.split()[-2:]
    assert old_version.startswith("2."), written.stdout
    old_revision = psql(DATABASE, "SELECT version_num FROM alembic_version")
    platform_revision = psql(settings().get("POSTGRES_DB", "mlflow"), "SELECT version_num FROM alembic_version")
    assert old_revision != platform_revision, "the older MLflow's schema is the current one: nothing to migrate"

    # The mlflow service's own command and settings, on the older database.
    started = compose("run", "-d", "--name", SERVER, "-e", f"MLFLOW_BACKEND_STORE_URI={upgrade_database}", "mlflow")
    assert started.returncode == 0, started.stderr
    wait_for(lambda: container_state(SERVER)[0] == "healthy", 300, "the mlflow service on the older database to be healthy")

    assert psql(DATABASE, "SELECT version_num FROM alembic_version") == platform_revision
    read = subprocess.run(["docker", "exec", SERVER, "python", "-c", READ_WITH_NEW_MLFLOW], capture_output=True,
                          text=True, check=False, timeout=300)
    assert read.returncode == 0, read.stderr[-3000:]
    served = json.loads(read.stdout.strip().splitlines()[-1])
    assert int(served["mlflow"].split(".")[0]) >= 3, served["mlflow"]
    assert (served["run_id"], served["status"], served["params"]) == (run_id, "FINISHED", {"learning_rate": "0.001"})
    assert served["history"] == [[1, 0.81], [2, 0.86], [3, 0.88]]
    assert served["champion"] == ["1", run_id]
