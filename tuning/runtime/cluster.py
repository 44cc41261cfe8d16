"""The Ray cluster a search runs on: join or start it, and what its live nodes can hold."""

from __future__ import annotations

import contextlib
import importlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import ray
from ray.autoscaler.sdk import request_resources

from tuning.runtime.error_text import first_line
from tuning.runtime.library_output import QUIET_LIBRARIES

NodeResources = dict[str, float]
"""One node's resources as Ray reports them: {"CPU": 2.0, "memory": ..., ...}."""


class ClusterError(RuntimeError):
    """Ray cannot be started or reached; the message names the address."""


def start_local_while_importing(module: str) -> None:
    """`connect(None)` while `module` is imported on a thread: a local Ray's processes start while the driver's
    libraries load, seconds off every search. Not the other way round: the processes `ray.init` starts die with the
    thread that started them."""
    loader = threading.Thread(target=_import_quietly, args=(module,), name=f"import {module}", daemon=True)
    loader.start()
    try:
        connect(None)
    finally:
        loader.join()


def _import_quietly(module: str) -> None:
    """Import `module`; a failure is left to happen again, and be reported, where the module is next imported."""
    with contextlib.suppress(Exception):
        importlib.import_module(module)


def connect(address: str | None) -> None:
    """Start or join Ray; a plain host:port that refuses connections fails at once instead of retrying.

    Without an address, `ray.init` joins the local Ray that `ray start --head` last started, else starts one. A
    local Ray started here has no dashboard: it costs seconds of every quick search's start. To watch a local
    search in it, start Ray first (`ray start --head`): a search without `--address` joins it. One that died
    without `ray stop` (killed, out of memory) leaves its address behind; Ray would retry it for many minutes,
    so the search starts a new local Ray instead and says so. A process already connected stays so."""
    if ray.is_initialized():
        return
    if address and ":" in address and "://" not in address and (refusal := why_unreachable(address)):
        raise ClusterError(f"--address {address}: cannot start or reach Ray ({refusal})")
    if address is None:
        left_behind = latest_local_ray()
        if left_behind and why_unreachable(left_behind):
            print(f"note: the local Ray at {left_behind} ({LATEST_LOCAL_RAY_FILE} under {ray_temp_dir()}) does not "
                  "answer; starting a new one", file=sys.stderr)
            address = "local"
    try:
        ray.init(address=address, include_dashboard=False, configure_logging=False, log_to_driver=False,
                 runtime_env={"env_vars": QUIET_LIBRARIES})
    except (OSError, RuntimeError, ValueError, ray.exceptions.RayError) as error:  # what ray.init raises when it cannot
        where = address if address not in (None, "local") else "a local Ray ($RAY_ADDRESS or a new local cluster)"
        raise ClusterError(f"--address {where}: cannot start or reach Ray ({first_line(error)})") from None


def disconnect() -> None:
    """Leave Ray now, stopping the local Ray this process started, if any. At the interpreter's exit Ray's own hook
    would do the same after half a second's wait for log lines, which a search does not forward."""
    ray.shutdown()


LATEST_LOCAL_RAY_FILE = "ray_current_cluster"
"""Where `ray start --head` writes its address for `ray.init()` to join, in Ray's temporary folder (see `ray.init`)."""


def ray_temp_dir(environment: Mapping[str, str] = os.environ) -> Path:
    """Ray's temporary folder on Linux: $RAY_TMPDIR, else $TMPDIR, else /tmp; then `ray`."""
    return Path(environment.get("RAY_TMPDIR") or environment.get("TMPDIR") or "/tmp", "ray")


def latest_local_ray() -> str | None:
    """The host:port of the local Ray that `ray start --head` last started (and `ray stop` did not clear)."""
    try:
        return (ray_temp_dir() / LATEST_LOCAL_RAY_FILE).read_text().strip() or None
    except OSError:
        return None


HEAD_START_TIMEOUT_S = 60


@contextlib.contextmanager
def local_head(port: int, cwd: Path | None = None, environment: Mapping[str, str] = os.environ) -> Iterator[str]:
    """A local Ray head (`ray start --head --block`, no dashboard) that searches without `--address` join, as a user
    starts one; yields its address, then stops it and clears the address it left for `ray.init()`."""
    address_file = ray_temp_dir(environment) / LATEST_LOCAL_RAY_FILE
    head = subprocess.Popen(["ray", "start", "--head", f"--port={port}", "--include-dashboard=false",
                             "--disable-usage-stats", "--block"], cwd=cwd, env=dict(environment),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + HEAD_START_TIMEOUT_S
        while not (address_file.exists() and (address := address_file.read_text().strip()).endswith(f":{port}")):
            if head.poll() is not None or time.monotonic() > deadline:
                raise ClusterError(f"port {port}: `ray start --head` did not come up (is the port taken?)")
            time.sleep(0.5)
        yield address
    finally:
        head.terminate()
        head.wait(timeout=HEAD_START_TIMEOUT_S)
        with contextlib.suppress(OSError):
            if address_file.read_text().strip().endswith(f":{port}"):
                address_file.unlink()


def why_unreachable(host_port: str) -> str | None:
    """Why nothing accepts a TCP connection at host:port within 5 s; None when something does."""
    host, _, port = host_port.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, ValueError) as error:
        return str(error)
    return None


def live_nodes() -> list[NodeResources]:
    """The resources of each live node of the connected cluster."""
    return [node["Resources"] for node in ray.nodes() if node["Alive"]]


def total(nodes: list[NodeResources], resource: str) -> float:
    """How much of `resource` ("CPU", "GPU", ...) all these nodes hold together."""
    return sum(node.get(resource, 0.0) for node in nodes)


def smallest_node_cpus(nodes: list[NodeResources]) -> float:
    """The CPUs of the node with the fewest, among those with any (a head may keep none for trials); 1 if none has."""
    return min((node["CPU"] for node in nodes if node.get("CPU", 0.0) > 0), default=1.0)


def cpus_per_gpu_trial(nodes: list[NodeResources], gpus_per_trial: float) -> float:
    """The whole CPUs each trial of `gpus_per_trial` GPUs gets when a GPU node's CPUs are shared by the trials its GPUs
    hold, on the GPU node where that share is smallest; 1 when no node holds such a trial."""
    shares = [node.get("CPU", 0.0) / (node["GPU"] // gpus_per_trial) for node in nodes
              if gpus_per_trial > 0 and node.get("GPU", 0.0) >= gpus_per_trial]
    return float(max(1, int(min(shares)))) if shares else 1.0


def check_trial_fits_a_node(nodes: list[NodeResources], cpus_per_trial: float, gpus_per_trial: float,
                            waited_s: float = 0.0) -> None:
    """ClusterError, naming the flag, when none of these nodes can hold one trial (Tune would wait for it forever)."""
    for flag_name, resource, wanted in (("--cpus-per-trial", "CPU", cpus_per_trial), ("--gpus-per-trial", "GPU", gpus_per_trial)):
        largest = max((node.get(resource, 0.0) for node in nodes), default=0.0)
        if wanted > largest:
            waited = f"; none joined in --wait-for-nodes-s {waited_s:g}" if waited_s else ""
            raise ClusterError(f"{flag_name} {wanted:g}: no Ray node has that many {resource}s "
                                f"(the largest has {largest:g}; {len(nodes)} nodes, {total(nodes, resource):g} in all{waited})")


def a_node_fits(nodes: list[NodeResources], cpus_per_trial: float, gpus_per_trial: float) -> bool:
    """Whether one of these nodes can hold a trial of these CPUs and GPUs."""
    return any(node.get("CPU", 0.0) >= cpus_per_trial and node.get("GPU", 0.0) >= gpus_per_trial for node in nodes)


NODE_POLL_S = 2.0


def nodes_once_a_trial_fits(cpus_per_trial: float, gpus_per_trial: float, wait_s: float) -> list[NodeResources]:
    """The live nodes, once one can hold a trial. On an autoscaling cluster a node that fits may not be up yet (a GPU
    group at 0 nodes): when none fits, ask the autoscaler for one trial's resources and wait up to `wait_s` for it to
    join. ClusterError, naming the flag, when none does (Tune would wait for it forever)."""
    nodes = live_nodes()
    if wait_s > 0 and not a_node_fits(nodes, cpus_per_trial, gpus_per_trial):
        bundle = {"CPU": cpus_per_trial, **({"GPU": gpus_per_trial} if gpus_per_trial else {})}
        request_resources(bundles=[bundle])
        deadline = time.monotonic() + wait_s
        try:
            while not a_node_fits(nodes, cpus_per_trial, gpus_per_trial) and time.monotonic() < deadline:
                time.sleep(NODE_POLL_S)
                nodes = live_nodes()
        finally:  # the trials' own demands keep the node; a standing request would keep it after the search
            request_resources(bundles=[])
    check_trial_fits_a_node(nodes, cpus_per_trial, gpus_per_trial, waited_s=wait_s)
    return nodes
