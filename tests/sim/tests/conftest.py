"""Fixtures: a running SimCluster and SSH clients that pin its host keys like the integration."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import asyncssh
import pytest

from tests.sim import SimCluster, SimConfig, generate_client_key

SshConnect = Callable[..., Awaitable[asyncssh.SSHClientConnection]]


@pytest.fixture(scope="session")
def client_key_pair() -> tuple[str, str]:
    return generate_client_key()


@pytest.fixture
def client_key(client_key_pair: tuple[str, str]) -> asyncssh.SSHKey:
    return asyncssh.import_private_key(client_key_pair[0])


@pytest.fixture
def sim_config(client_key_pair: tuple[str, str]) -> SimConfig:
    # Loads long enough that "still loading" checks right after a command cannot race the load.
    return SimConfig(authorized_keys=[client_key_pair[1]], load_seconds=1.0, restart_delay=0.1)


@pytest.fixture
async def sim(sim_config: SimConfig) -> AsyncIterator[SimCluster]:
    async with SimCluster(sim_config) as cluster:
        yield cluster


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def known_hosts_for(sim: SimCluster, node_index: int) -> asyncssh.SSHKnownHosts:
    """Pin the node's host key as it was when the test started (the integration stores it)."""
    node = sim.nodes[node_index]
    return asyncssh.import_known_hosts(f"[{node.host}]:{node.ssh_port} {node.host_public_key}\n")


@pytest.fixture
async def ssh(sim: SimCluster, client_key: asyncssh.SSHKey) -> AsyncIterator[SshConnect]:
    """Open SSH connections to sim nodes with a pinned host key; all closed after the test."""
    opened: list[asyncssh.SSHClientConnection] = []
    pins = {index: known_hosts_for(sim, index) for index in range(len(sim.nodes))}

    async def connect(node_index: int = 0, **options: object) -> asyncssh.SSHClientConnection:
        node = sim.nodes[node_index]
        settings: dict[str, object] = {
            "username": sim.config.username,
            "client_keys": [client_key],
            "known_hosts": pins[node_index],
        }
        settings.update(options)
        conn = await asyncssh.connect(node.host, node.ssh_port, **settings)  # type: ignore[arg-type]
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()
        await conn.wait_closed()
