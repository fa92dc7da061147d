"""A Spark Control entry with voice bridges, set up in the test Home Assistant."""

from __future__ import annotations

import socket
from typing import Any

from pytest_homeassistant_custom_component.common import MockConfigEntry

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
    CONF_STT_PORT,
    CONF_TTS_PORT,
    CONF_VOICE_BRIDGES,
    DOMAIN,
)
from tests.sim import SimCluster


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        return int(sock.getsockname()[1])


def lan_address() -> str:
    """The address this host uses towards the mDNS group (what HA's network helper finds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("224.0.0.251", 1))
        return str(sock.getsockname()[0])


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def cluster_entry(sim: SimCluster, client_key: tuple[str, str], **options: Any) -> MockConfigEntry:
    """A cluster entry for the simulator, as the config flow creates it."""
    nodes = [f"{node.host}:{node.ssh_port}" for node in sim.nodes]
    data = {
        CONF_CLUSTER_NAME: "Lab",
        CONF_NODES: nodes,
        CONF_SSH_USER: sim.config.username,
        CONF_SSH_PORT: 22,
        CONF_REPO_PATH: sim.config.repo_path,
        CONF_PRIVATE_KEY: client_key[0],
        CONF_PUBLIC_KEY: client_key[1],
        CONF_HOST_KEYS: {
            node: sim_node.host_public_key for node, sim_node in zip(nodes, sim.nodes, strict=True)
        },
        CONF_ENDPOINTS: {
            "vllm": {"host": "127.0.0.1", "port": _port(sim.vllm.url)},
            "parakeet": {"host": "127.0.0.1", "port": _port(sim.parakeet.url)},
            "magpie": {"host": "127.0.0.1", "port": _port(sim.magpie.url)},
        },
    }
    return MockConfigEntry(
        domain=DOMAIN,
        title="Lab",
        unique_id=nodes[0],
        data=data,
        options={
            CONF_VOICE_BRIDGES: True,
            CONF_STT_PORT: free_port(),
            CONF_TTS_PORT: free_port(),
            **options,
        },
    )
