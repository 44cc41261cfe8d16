"""A small scale run: many synthetic trials at once through the search's own path, on a simulated 4-node cluster,
with nothing lost and nothing written twice (`bench/scale.py` is the large one)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from bench.scale import scaled_search, services

pytestmark = pytest.mark.slow
TRIALS, CONCURRENT, EPOCHS, EPOCH_S = 40, 16, 3, 0.2


def test_scale_many_concurrent_trials_lose_and_duplicate_nothing(shared_data_dir: Path) -> None:
    # The search sets this process's MLflow tracking and registry URIs to its server, which stops with the test.
    tracking_uri, registry_uri = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    try:
        with services(nodes=4, cpus_per_node=4, data_dir=str(shared_data_dir), mlflow_workers=1) as place:
            measured = scaled_search(place, "scale-test", TRIALS, CONCURRENT, EPOCH_S, EPOCHS, checkpoint_bytes=100_000)
    finally:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(registry_uri)
    audit = measured.audit
    assert audit.trials == TRIALS, "every trial asked for ran"
    assert TRIALS <= audit.results <= TRIALS * EPOCHS, "each trial reported between one epoch and all of them"
    assert audit.runs_missing == 0 and audit.runs_duplicated == 0, audit
    assert audit.points_missing == 0 and audit.points_duplicated == 0, audit
    assert audit.study_trials_missing == 0 and audit.study_trials_duplicated == 0 and audit.study_epochs_missing == 0, audit
    assert audit.points_expected >= audit.results * 10, "each epoch's metrics were counted"
    assert len(measured.asks) == TRIALS and len(measured.tells) == TRIALS, "the searcher asked and told once a trial"
    assert measured.outbox_peak > 0 and max(measured.connections.values()) > 0, "the samplers saw the search"
