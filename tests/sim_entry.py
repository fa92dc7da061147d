"""Config entry data for the simulated cluster, shaped as the integration's config flow stores it.

Shared by every Home Assistant test suite (integration, recovery, voice, add-on discovery).
"""

from __future__ import annotations

from typing import Any

from custom_components.spark_control.const import (
    CONF_CLUSTER_NAME,
    CONF_ENDPOINTS,
    CONF_HOST_KEYS,
    CONF_NODES,
    CONF_PRIVATE_KEY,
    CONF_PUBLIC_KEY,
    CONF_REPO_PATH,
    CONF_SSH_PORT,
    CONF_SSH_USER,
)
from custom_components.spark_control.identity import (
    ENTRY_MINOR_VERSION,
    ENTRY_VERSION,
    cluster_unique_id,
)
from tests.sim import SimCluster


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def node_strings(sim: SimCluster) -> list[str]:
    """The nodes as the config flow stores them (host:port, since the sim ports are not 22)."""
    return [f"{node.host}:{node.ssh_port}" for node in sim.nodes]


def sim_entry_data(sim: SimCluster, private_key: str, public_key: str) -> dict[str, Any]:
    """Entry data for `sim`, logging in with the given key pair, host keys already pinned."""
    nodes = node_strings(sim)
    return {
        CONF_CLUSTER_NAME: "Lab",
        CONF_NODES: nodes,
        CONF_SSH_USER: sim.config.username,
        CONF_SSH_PORT: 22,
        CONF_REPO_PATH: sim.config.repo_path,
        CONF_PRIVATE_KEY: private_key,
        CONF_PUBLIC_KEY: public_key,
        CONF_HOST_KEYS: {
            node: sim_node.host_public_key for node, sim_node in zip(nodes, sim.nodes, strict=True)
        },
        CONF_ENDPOINTS: {
            "vllm": {"host": "127.0.0.1", "port": _port(sim.vllm.url)},
            "parakeet": {"host": "127.0.0.1", "port": _port(sim.parakeet.url)},
            "magpie": {"host": "127.0.0.1", "port": _port(sim.magpie.url)},
        },
    }


def entry_identity(data: dict[str, Any]) -> dict[str, Any]:
    """MockConfigEntry arguments of a current entry for `data`: its unique id (the head node's
    host key fingerprint) and the entry version that goes with it."""
    return {
        "unique_id": cluster_unique_id(data),
        "version": ENTRY_VERSION,
        "minor_version": ENTRY_MINOR_VERSION,
    }
