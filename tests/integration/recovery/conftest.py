"""Fixtures of the recovery tests: real sockets, a simulated cluster, a client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aiohttp
import pytest

from custom_components.spark_control.sparklib.cluster import (
    ClusterClient,
    ClusterConfig,
    NodeConfig,
)
from custom_components.spark_control.sparklib.http_api import Endpoint
from custom_components.spark_control.sparklib.keys import KeyPair, generate_keypair
from tests.paths import REPO
from tests.sim import SimCluster, SimConfig

PROBE_CLIP = REPO / "custom_components/spark_control/probe_clip.wav"
RESTART_DELAY = 0.2  # the simulated container's boot time after `docker restart`


@pytest.fixture(scope="session")
def client_key() -> KeyPair:
    """The key the control plane logs in with (authorized on the simulated nodes)."""
    return generate_keypair()


@pytest.fixture(scope="session")
def probe_clip() -> bytes:
    """The speech clip shipped with the integration."""
    return PROBE_CLIP.read_bytes()


@pytest.fixture
async def sim(client_key: KeyPair) -> AsyncIterator[SimCluster]:
    """A two-node simulated cluster: vLLM on node 0, Parakeet and Magpie on node 1."""
    config = SimConfig(
        nodes=2,
        authorized_keys=[client_key.public_key],
        load_seconds=0.2,
        restart_delay=RESTART_DELAY,
    )
    async with SimCluster(config) as cluster:
        yield cluster


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session (HA's shared one in the HA tests)."""
    async with aiohttp.ClientSession() as client_session:
        yield client_session


def base_urls(sim: SimCluster) -> dict[str, str]:
    """Service key -> base URL of the simulated services."""
    return {"vllm": sim.vllm.url, "parakeet": sim.parakeet.url, "magpie": sim.magpie.url}


def _endpoint(url: str) -> Endpoint:
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    return Endpoint(parts.hostname, parts.port)


@pytest.fixture
async def cluster_client(
    sim: SimCluster, client_key: KeyPair, session: aiohttp.ClientSession
) -> AsyncIterator[ClusterClient]:
    """The library client the HA glue restarts containers with, pointed at the simulator."""
    names = [f"node{index}" for index in range(len(sim.nodes))]
    config = ClusterConfig(
        name="sim",
        nodes=[
            NodeConfig(node.host, node.ssh_port, "spark", node_id=name)
            for name, node in zip(names, sim.nodes, strict=True)
        ],
        private_key=client_key.private_key,
        host_keys={name: node.host_public_key for name, node in zip(names, sim.nodes, strict=True)},
        endpoints={service: _endpoint(url) for service, url in base_urls(sim).items()},
        service_nodes={"vllm": "node0", "parakeet": "node1", "magpie": "node1"},
    )
    client = ClusterClient(config, session)
    yield client
    await client.close()
