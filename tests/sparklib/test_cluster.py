"""ClusterClient: the façade the HA glue uses, against the two-node simulator."""

from __future__ import annotations

import aiohttp
import pytest

from custom_components.spark_control.sparklib.catalog import Catalog, load_bundled_models
from custom_components.spark_control.sparklib.cluster import ClusterClient
from custom_components.spark_control.sparklib.errors import (
    HostKeyChanged,
    InvalidInput,
    ServiceNotOnNode,
)
from custom_components.spark_control.sparklib.hosts import same_host
from custom_components.spark_control.sparklib.http_api import Endpoint
from custom_components.spark_control.sparklib.keys import KeyPair
from tests.sim import SimCluster

from .conftest import cluster_config


async def test_validate_pins_on_first_use(
    sim: SimCluster, client_key: KeyPair, session: aiohttp.ClientSession
) -> None:
    client = ClusterClient(cluster_config(sim, client_key, pinned=False), session)
    try:
        fingerprints = await client.validate()
        assert fingerprints == {
            "node0": sim.nodes[0].host_key_fingerprint,
            "node1": sim.nodes[1].host_key_fingerprint,
        }
        assert set(client.host_keys) == {"node0", "node1"}
        assert all(node.commands == ["uname -srm"] for node in sim.nodes)
    finally:
        await client.close()


async def test_validate_refuses_changed_host_key(
    sim: SimCluster, client_key: KeyPair, session: aiohttp.ClientSession
) -> None:
    pinned = cluster_config(sim, client_key)  # the keys as pinned at setup
    sim.faults.change_host_key(1)
    client = ClusterClient(pinned, session)
    try:
        with pytest.raises(HostKeyChanged) as err:
            await client.validate()
        assert err.value.host == "node1"
        assert err.value.actual_fingerprint == sim.nodes[1].host_key_fingerprint
    finally:
        await client.close()


async def test_service_action_targets_the_hosting_node(
    sim: SimCluster, client: ClusterClient
) -> None:
    await client.service_action("parakeet", "restart")
    assert sim.nodes[1].commands == ["docker restart parakeet-asr"]
    states = await client.containers()
    assert states["parakeet"] is not None
    assert states["parakeet"].running
    with pytest.raises(InvalidInput):
        await client.service_action("postgres", "restart")


async def test_vllm_stops_through_the_launcher_and_never_starts_by_docker(
    sim: SimCluster, client: ClusterClient
) -> None:
    """vLLM's container runs `sleep infinity` (vLLM is launched inside it) and `--rm`: it is
    stopped on every node by launch-cluster.sh and gone afterwards; a docker start or restart
    could only bring back the empty container, so the client refuses them before sending."""
    await client.service_action("vllm", "stop")
    assert sim.nodes[0].commands == [f"cd {sim.config.repo_path} && ./launch-cluster.sh stop"]
    for action in ("start", "restart"):
        with pytest.raises(InvalidInput, match="launch"):
            await client.service_action("vllm", action)  # type: ignore[arg-type]
    assert len(sim.nodes[0].commands) == 1
    assert (await client.containers())["vllm"] is None


async def test_gpu_stats_per_node(sim: SimCluster, client: ClusterClient) -> None:
    stats = await client.gpu_stats()
    assert set(stats) == {"node0", "node1"}
    gpu = stats["node0"][0]
    assert gpu.name
    assert gpu.utilization_pct is not None
    # One node down: the other still reports.
    sim.faults.reject_key(1)
    await client.nodes["node1"].close()
    assert set(await client.gpu_stats()) == {"node0"}


async def test_one_node_and_service_urls(sim: SimCluster, client: ClusterClient) -> None:
    """The glue's doors: one node's GPUs, each service's URL from the configured endpoints,
    and deep probes built on those URLs."""
    assert (await client.node_gpus("node1"))[0].name
    with pytest.raises(InvalidInput):
        await client.node_gpus("node9")
    assert client.base_url("vllm") == sim.vllm.url
    assert client.base_url("parakeet") == sim.parakeet.url
    prober = client.deep_prober(clip_wav=b"RIFF....WAVE", timeout=5)
    assert set(prober.services) == {"vllm", "parakeet", "magpie"}
    assert await prober.is_healthy("magpie")


async def test_swap_across_the_cluster(sim: SimCluster, client: ClusterClient) -> None:
    entry = Catalog(load_bundled_models()).get("qwen3-235b-fp8")
    result = await client.swap(entry, timeout=30)
    assert result.served_models == [entry.repo_id]
    launch = sim.nodes[0].commands[1]
    assert "-n 127.0.0.1,127.0.0.1" in launch
    assert launch.endswith("-tp 2")


async def test_check_updates(client: ClusterClient) -> None:
    assert (await client.check_updates()).behind == 0


def test_config_errors(sim: SimCluster, client_key: KeyPair) -> None:
    config = cluster_config(sim, client_key)
    config.service_nodes = {"parakeet": "node9"}
    with pytest.raises(InvalidInput):
        ClusterClient(config, None)  # type: ignore[arg-type]
    config = cluster_config(sim, client_key)
    config.nodes = []
    with pytest.raises(InvalidInput):
        ClusterClient(config, None)  # type: ignore[arg-type]


def test_host_spellings() -> None:
    assert same_host("Spark-2.LAN.", "spark-2.lan")
    assert same_host("[fe80::1]", "fe80:0:0::1")
    assert not same_host("spark-2", "spark-3")


async def test_service_on_no_node_is_refused(
    sim: SimCluster, client_key: KeyPair, session: aiohttp.ClientSession
) -> None:
    config = cluster_config(sim, client_key)
    config.service_nodes = {}
    config.endpoints["magpie"] = Endpoint("192.0.2.7", 9000)
    config.endpoints["parakeet"] = Endpoint("localhost", config.endpoints["parakeet"].port)
    client = ClusterClient(config, session)
    try:
        with pytest.raises(ServiceNotOnNode) as err:
            client.node_for("magpie")
        assert err.value.host == "192.0.2.7"
        placement = await client.locate_services()
        assert placement == {"vllm": "node0", "parakeet": "node1", "magpie": None}
        assert client.node_for("parakeet").name == "node1"
        with pytest.raises(ServiceNotOnNode):
            await client.service_action("magpie", "restart")
        containers = await client.containers()
        assert containers["magpie"] is None
        assert containers["parakeet"] is not None
        assert all("magpie" not in command for node in sim.nodes for command in node.commands)
    finally:
        await client.close()


async def test_vllm_server_running_tells_an_exit_from_a_stop(
    sim: SimCluster, client: ClusterClient
) -> None:
    """`docker top vllm_node` on vLLM's node: the server runs (True), was killed while its
    container runs on (False), or its container is gone with a stop (None)."""
    assert await client.vllm_server_running() is True
    await sim.faults.refuse("vllm")  # a closed port alone says nothing about the process
    assert await client.vllm_server_running() is True
    await sim.faults.clear()
    await sim.faults.kill_server()
    assert await client.vllm_server_running() is False
    await client.service_action("vllm", "stop")
    assert await client.vllm_server_running() is None
    assert sim.nodes[0].commands.count("docker top vllm_node") == 4
