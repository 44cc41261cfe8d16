"""Joining Ray, and what a cluster's live nodes can hold: the CPUs `auto` gives a trial, and a trial no node can hold."""

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import ray
from ray.cluster_utils import Cluster

from tuning.runtime.cluster import (
    LATEST_LOCAL_RAY_FILE,
    ClusterError,
    a_node_fits,
    check_trial_fits_a_node,
    connect,
    cpus_per_gpu_trial,
    live_nodes,
    nodes_once_a_trial_fits,
    smallest_node_cpus,
    total,
)
from tuning.testing.services import free_port

HEAD_WITHOUT_CPUS = {"memory": 2.0e9, "node:__internal_head__": 1.0}
WORKERS = [{"CPU": 4.0, "memory": 8.0e9}, {"CPU": 2.0, "memory": 4.0e9}]


def test_auto_cpus_come_from_the_smallest_node_that_runs_trials() -> None:
    assert smallest_node_cpus([HEAD_WITHOUT_CPUS, *WORKERS]) == 2
    assert smallest_node_cpus([HEAD_WITHOUT_CPUS]) == 1, "a cluster without CPUs still gets a trial size"
    assert total([HEAD_WITHOUT_CPUS, *WORKERS], "CPU") == 6


def test_gpu_trials_share_the_cpus_of_the_gpu_node_with_the_least_per_trial() -> None:
    gpu_nodes = [{"CPU": 8.0, "GPU": 1.0}, {"CPU": 16.0, "GPU": 4.0}]
    assert cpus_per_gpu_trial([HEAD_WITHOUT_CPUS, *WORKERS, *gpu_nodes], gpus_per_trial=0.5) == 2, "16 CPUs for 8 trials"
    assert cpus_per_gpu_trial([HEAD_WITHOUT_CPUS, *WORKERS, *gpu_nodes], gpus_per_trial=1) == 4
    assert cpus_per_gpu_trial([{"CPU": 2.0, "GPU": 4.0}], gpus_per_trial=1) == 1, "at least one CPU a trial"
    assert cpus_per_gpu_trial(WORKERS, gpus_per_trial=1) == 1, "no GPU node: the refusal comes from the fit check"


def test_a_trial_larger_than_every_node_is_refused_naming_the_flag() -> None:
    check_trial_fits_a_node([HEAD_WITHOUT_CPUS, *WORKERS], cpus_per_trial=4, gpus_per_trial=0)
    with pytest.raises(ClusterError, match=r"^--cpus-per-trial 5: no Ray node has that many CPUs "
                                            r"\(the largest has 4; 3 nodes, 6 in all\)$"):
        check_trial_fits_a_node([HEAD_WITHOUT_CPUS, *WORKERS], cpus_per_trial=5, gpus_per_trial=0)


def test_a_trial_fits_a_node_with_enough_of_both() -> None:
    gpu_node = {"CPU": 8.0, "GPU": 1.0}
    assert a_node_fits([HEAD_WITHOUT_CPUS, *WORKERS], cpus_per_trial=4, gpus_per_trial=0)
    assert not a_node_fits([HEAD_WITHOUT_CPUS, *WORKERS], cpus_per_trial=1, gpus_per_trial=1)
    assert a_node_fits([*WORKERS, gpu_node], cpus_per_trial=8, gpus_per_trial=1)
    assert not a_node_fits([{"CPU": 4.0}, {"CPU": 2.0, "GPU": 2.0}], cpus_per_trial=4, gpus_per_trial=1), "on one node"


@pytest.mark.slow
def test_the_search_waits_for_a_node_that_fits_and_says_when_none_came() -> None:
    """As on an autoscaling cluster whose GPU group starts at 0 nodes: the node joins while the search waits."""
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    ray.init(address=cluster.address, configure_logging=False, log_to_driver=False)
    try:
        with pytest.raises(ClusterError, match=r"^--gpus-per-trial 1: no Ray node has that many GPUs .*"
                                                r"none joined in --wait-for-nodes-s 1\)$"):
            nodes_once_a_trial_fits(1, 1, wait_s=1)
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=1) as pool:  # the node joins from this thread: Ray's Cluster wants the main one
            waiting = pool.submit(nodes_once_a_trial_fits, 1, 1, 120)
            time.sleep(3.0)
            assert not waiting.done()
            cluster.add_node(num_cpus=1, num_gpus=1)
            nodes = waiting.result(timeout=60)
        assert a_node_fits(nodes, 1, 1) and time.monotonic() - started < 60
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.mark.slow
def test_a_local_ray_that_died_without_ray_stop_does_not_hold_the_search(monkeypatch, capsys) -> None:
    """`ray start --head` killed leaves its address behind; `ray.init()` would retry it for many minutes."""
    with tempfile.TemporaryDirectory(prefix="r", dir="/tmp") as temp:  # short: Ray's socket paths must fit 107 bytes
        monkeypatch.setenv("RAY_TMPDIR", temp)
        Path(temp, "ray").mkdir()
        Path(temp, "ray", LATEST_LOCAL_RAY_FILE).write_text(f"127.0.0.1:{free_port()}")  # nothing listens there
        started = time.monotonic()
        connect(None)
        try:
            assert ray.is_initialized() and total(live_nodes(), "CPU") >= 1
        finally:
            ray.shutdown()
    assert time.monotonic() - started < 60
    assert "does not answer; starting a new one" in capsys.readouterr().err

