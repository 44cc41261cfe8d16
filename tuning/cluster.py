"""The Ray cluster a search runs on: join or start it, and what its live nodes can hold."""

from __future__ import annotations

import socket

import ray

from tuning.library_output import QUIET_LIBRARIES
from tuning.settings import SettingsError

NodeResources = dict[str, float]
"""One node's resources as Ray reports them: {"CPU": 2.0, "memory": ..., ...}."""


class ClusterError(RuntimeError):
    """Ray cannot be started or reached; the message names the address."""


def connect(address: str | None) -> None:
    """Start or join Ray; a plain host:port that refuses connections fails at once instead of retrying.

    A local Ray started here has no dashboard: it costs seconds of every quick search's start. To watch a
    local search in it, start Ray first (`ray start --head`): a search without `--address` joins it."""
    if address and ":" in address and "://" not in address:
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except (OSError, ValueError) as error:
            raise ClusterError(f"--address {address}: cannot start or reach Ray ({error})") from None
    try:
        ray.init(address=address, include_dashboard=False, configure_logging=False, log_to_driver=False,
                 runtime_env={"env_vars": QUIET_LIBRARIES})
    except (OSError, RuntimeError, ValueError, ray.exceptions.RayError) as error:  # what ray.init raises when it cannot
        where = address or "a local Ray ($RAY_ADDRESS or a new local cluster)"
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ClusterError(f"--address {where}: cannot start or reach Ray ({first_line})") from None


def live_nodes() -> list[NodeResources]:
    """The resources of each live node of the connected cluster."""
    return [node["Resources"] for node in ray.nodes() if node["Alive"]]


def total(nodes: list[NodeResources], resource: str) -> float:
    """How much of `resource` ("CPU", "GPU", ...) all these nodes hold together."""
    return sum(node.get(resource, 0.0) for node in nodes)


def smallest_node_cpus(nodes: list[NodeResources]) -> float:
    """The CPUs of the node with the fewest, among those with any (a head may keep none for trials); 1 if none has."""
    return min((node["CPU"] for node in nodes if node.get("CPU", 0.0) > 0), default=1.0)


def check_trial_fits_a_node(nodes: list[NodeResources], cpus_per_trial: float, gpus_per_trial: float) -> None:
    """SettingsError when none of these nodes can hold one trial (Tune would wait for it forever)."""
    for flag_name, resource, wanted in (("--cpus-per-trial", "CPU", cpus_per_trial), ("--gpus-per-trial", "GPU", gpus_per_trial)):
        largest = max((node.get(resource, 0.0) for node in nodes), default=0.0)
        if wanted > largest:
            raise SettingsError(f"{flag_name} {wanted:g}: no Ray node has that many {resource}s "
                                f"(the largest has {largest:g}; {len(nodes)} nodes, {total(nodes, resource):g} in all)")
