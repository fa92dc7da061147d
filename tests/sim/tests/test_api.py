"""The public API others code against: config validation, placement, endpoints, keys."""

from __future__ import annotations

import asyncssh
import pytest

from tests.sim import SimCluster, SimConfig, generate_client_key


def test_config_rejects_impossible_values() -> None:
    with pytest.raises(ValueError, match="at least one node"):
        SimConfig(nodes=0)
    with pytest.raises(ValueError, match="token_rate"):
        SimConfig(token_rate=0)


def test_generated_client_key_round_trips() -> None:
    private_pem, public_line = generate_client_key()
    key = asyncssh.import_private_key(private_pem)
    assert public_line.startswith("ssh-ed25519 ")
    assert key.export_public_key("openssh").decode().strip() == public_line


async def test_endpoints_describe_nodes_and_services(sim: SimCluster) -> None:
    endpoints = sim.endpoints()
    assert [node["name"] for node in endpoints["nodes"]] == ["spark-1", "spark-2"]
    for node, info in zip(sim.nodes, endpoints["nodes"], strict=True):
        assert info["ssh_port"] == node.ssh_port > 0
        assert info["host_key_fingerprint"] == node.host_key_fingerprint
        key = asyncssh.import_public_key(info["host_public_key"])
        assert key.get_fingerprint("sha256") == node.host_key_fingerprint
    services = endpoints["services"]
    assert services["vllm"] | {"node": 0} == services["vllm"]
    assert services["parakeet"]["node"] == services["magpie"]["node"] == 1
    assert services["vllm"]["url"] == sim.vllm.url
    assert services["vllm"]["model"] == sim.config.served_model
    assert len({sim.vllm.url, sim.parakeet.url, sim.magpie.url}) == 3
    assert set(sim.containers) == {"vllm_node", "parakeet-asr", "magpie-tts"}


async def test_one_node_cluster_hosts_everything_on_node_zero() -> None:
    async with SimCluster(SimConfig(nodes=1)) as sim:
        assert len(sim.nodes) == 1
        assert {c.node_index for c in sim.containers.values()} == {0}
