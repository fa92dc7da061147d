"""Fixtures of the recovery tests: real sockets, a simulated cluster, a client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from custom_components.spark_control.sparklib.cluster import ClusterClient
from custom_components.spark_control.sparklib.keys import KeyPair
from tests.paths import REPO
from tests.sim import SimCluster, SimConfig

# The library suite's key, session and cluster configuration (one home for the three).
from tests.sparklib.conftest import client_key, cluster_config, session

PROBE_CLIP = REPO / "custom_components/spark_control/probe_clip.wav"
RESTART_DELAY = 0.2  # the simulated container's boot time after `docker restart`


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


def base_urls(sim: SimCluster) -> dict[str, str]:
    """Service key -> base URL of the simulated services."""
    return {"vllm": sim.vllm.url, "parakeet": sim.parakeet.url, "magpie": sim.magpie.url}


@pytest.fixture
async def cluster_client(
    sim: SimCluster, client_key: KeyPair, session: aiohttp.ClientSession
) -> AsyncIterator[ClusterClient]:
    """The library client the HA glue restarts containers with, pointed at the simulator."""
    client = ClusterClient(cluster_config(sim, client_key), session)
    yield client
    await client.close()


__all__ = ["client_key", "session"]
