"""cluster.yaml passes Ray's own cluster-launcher validation and keeps the platform's conventions."""

from __future__ import annotations

import copy
import tomllib

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from tests.conftest import REPOSITORY


def project_version() -> str:
    return tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]["version"]


@pytest.fixture
def cluster_config() -> dict:
    return yaml.safe_load((REPOSITORY / "cluster.yaml").read_text())


def test_ray_accepts_the_cluster_config(cluster_config: dict) -> None:
    prepared = prepare_config(copy.deepcopy(cluster_config))
    validate_config(prepared)
    assert prepared["max_workers"] == len(cluster_config["provider"]["worker_ips"])


def test_ray_rejects_a_broken_copy(cluster_config: dict) -> None:
    broken = copy.deepcopy(cluster_config)
    broken["docker"]["run_options"] = "--shm-size=2gb"  # must be a list
    with pytest.raises(Exception, match="run_options"):
        validate_config(prepare_config(broken))


def test_nodes_share_storage_token_and_image(cluster_config: dict) -> None:
    options = cluster_config["docker"]["run_options"]
    assert cluster_config["docker"]["image"] == f"fmnist-tune/python:{project_version()}", "the image `make build` tags"
    assert "-t fmnist-tune/python:$(VERSION)" in (REPOSITORY / "Makefile").read_text()
    assert "--env=RAY_AUTH_MODE=token" in options
    assert any(option.startswith("--volume=") and option.endswith(":/results") for option in options)
    assert any(option.startswith("--env=MLFLOW_TRACKING_URI=") for option in options)
    assert "/home/fmnist/.ray/auth_token" in cluster_config["file_mounts"]
    head_start = " ".join(cluster_config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start
