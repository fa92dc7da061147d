"""Fixtures of the sparklib tests: real sockets, a client key and a simulated cluster."""

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
from custom_components.spark_control.sparklib.http_api import Endpoint, ServiceApi
from custom_components.spark_control.sparklib.keys import KeyPair, generate_keypair
from custom_components.spark_control.sparklib.ssh import SshNode
from tests.sim import SimCluster, SimConfig

LOAD_SECONDS = 0.3


@pytest.fixture(scope="session")
def client_key() -> KeyPair:
    """The key pair the library authenticates with (authorized on the simulated nodes)."""
    return generate_keypair()


@pytest.fixture
async def sim(client_key: KeyPair) -> AsyncIterator[SimCluster]:
    """A two-node simulated cluster that trusts `client_key`."""
    config = SimConfig(nodes=2, authorized_keys=[client_key.public_key], load_seconds=LOAD_SECONDS)
    async with SimCluster(config) as cluster:
        yield cluster


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


def endpoint(url: str) -> Endpoint:
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    return Endpoint(parts.hostname, parts.port)


def sim_endpoints(sim: SimCluster) -> dict[str, Endpoint]:
    return {
        "vllm": endpoint(sim.vllm.url),
        "parakeet": endpoint(sim.parakeet.url),
        "magpie": endpoint(sim.magpie.url),
    }


def make_node(
    sim: SimCluster, key: KeyPair, index: int = 0, *, pinned: str | None = "sim", **kwargs: str
) -> SshNode:
    """An SshNode for a simulated node; `pinned="sim"` pins the node's real host key."""
    node = sim.nodes[index]
    return SshNode(
        node.host,
        node.ssh_port,
        kwargs.get("username", "spark"),
        key.private_key,
        node.host_public_key if pinned == "sim" else pinned,
        # Generous: on a loaded 2-core CI machine a handshake has stalled past 5 s.
        connect_timeout=30,
    )


def cluster_config(sim: SimCluster, key: KeyPair, *, pinned: bool = True) -> ClusterConfig:
    """The ClusterConfig the HA glue would build for the simulator (nodes share 127.0.0.1)."""
    names = [f"node{index}" for index in range(len(sim.nodes))]
    return ClusterConfig(
        name="sim",
        nodes=[
            NodeConfig(node.host, node.ssh_port, "spark", node_id=name)
            for name, node in zip(names, sim.nodes, strict=True)
        ],
        private_key=key.private_key,
        host_keys=(
            {name: node.host_public_key for name, node in zip(names, sim.nodes, strict=True)}
            if pinned
            else {}
        ),
        repo_path="~/spark-vllm-docker",
        endpoints=sim_endpoints(sim),
        service_nodes={"vllm": "node0", "parakeet": names[-1], "magpie": names[-1]},
    )


@pytest.fixture
async def node(sim: SimCluster, client_key: KeyPair) -> AsyncIterator[SshNode]:
    ssh = make_node(sim, client_key)
    yield ssh
    await ssh.close()


@pytest.fixture
def api(sim: SimCluster, session: aiohttp.ClientSession) -> ServiceApi:
    # Requests here must answer: a deadline a loaded machine keeps (a hang test sets its own).
    return ServiceApi(session, sim_endpoints(sim), timeout=30)


@pytest.fixture
async def client(
    sim: SimCluster, client_key: KeyPair, session: aiohttp.ClientSession
) -> AsyncIterator[ClusterClient]:
    cluster = ClusterClient(cluster_config(sim, client_key), session, http_timeout=30)
    yield cluster
    await cluster.close()
