"""A small scale run: many synthetic trials at once through the search's own path, on a simulated 4-node cluster,
with nothing lost and nothing written twice (`bench/scale.py` is the large one)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

from tuning.testing.scale import scaled_search, services

pytestmark = pytest.mark.slow
TRIALS, CONCURRENT, EPOCHS, EPOCH_S = 40, 16, 3, 0.2


def test_scale_many_concurrent_trials_lose_and_duplicate_nothing(shared_data_dir: Path) -> None:
    with mlflow_uris_kept(), services(nodes=4, cpus_per_node=4, data_dir=str(shared_data_dir), mlflow_workers=1) as place:
        measured = scaled_search(place, "scale-test", TRIALS, CONCURRENT, EPOCH_S, EPOCHS, checkpoint_bytes=100_000)
    audit = measured.audit
    assert audit.trials == TRIALS, "every trial asked for ran"
    assert TRIALS <= audit.results <= TRIALS * EPOCHS, "each trial reported between one epoch and all of them"
    assert audit.runs_missing == 0 and audit.runs_duplicated == 0, audit
    assert audit.points_missing == 0 and audit.points_duplicated == 0, audit
    assert audit.study_trials_missing == 0 and audit.study_trials_duplicated == 0 and audit.study_epochs_missing == 0, audit
    assert audit.points_expected >= audit.results * 10, "each epoch's metrics were counted"
    assert len(measured.asks) == TRIALS and len(measured.tells) == TRIALS, "the searcher asked and told once a trial"
    assert measured.outbox_peak > 0 and max(measured.connections.values()) > 0, "the samplers saw the search"


@contextlib.contextmanager
def mlflow_uris_kept() -> Iterator[None]:
    """The search sets this process's MLflow tracking and registry URIs (and their environment variables) to its server,
    which stops with the test: put them back as they were, or later tests' registry reads go there."""
    tracking_uri = mlflow.get_tracking_uri()
    environment = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    try:
        yield
    finally:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(environment["MLFLOW_REGISTRY_URI"])
        for name, value in environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
