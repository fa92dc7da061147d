"""SshNode against the simulated nodes over real SSH."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import asyncssh
import pytest

from custom_components.spark_control.sparklib import commands
from custom_components.spark_control.sparklib.errors import (
    AuthRejected,
    CannotConnect,
    CommandFailed,
    CommandTimeout,
    HostKeyChanged,
    HostKeyNotPinned,
)
from custom_components.spark_control.sparklib.keys import KeyPair, fingerprint
from custom_components.spark_control.sparklib.ssh import SshNode
from tests.sim import SimCluster

from .conftest import make_node


async def test_probe_over_one_kept_connection(sim: SimCluster, node: SshNode) -> None:
    for _ in range(3):
        result = await node.run(commands.probe())
        assert result.exit_status == 0
        assert result.stdout.startswith("Linux ")
        assert "aarch64" in result.stdout
    assert sim.nodes[0].commands == ["uname -srm"] * 3
    assert len(sim.nodes[0].connections) == 1


async def test_argv_and_cwd_are_quoted(sim: SimCluster, node: SshNode) -> None:
    result = await node.run(["./launch-cluster.sh", "status"], cwd="~/spark-vllm-docker")
    assert "vllm_node" in result.stdout
    assert sim.nodes[0].commands[-1] == "cd ~/spark-vllm-docker && ./launch-cluster.sh status"
    # A hostile argument arrives as one quoted word: the sim runs no second command.
    with pytest.raises(CommandFailed) as err:
        await node.run(["docker", "inspect", "x; uname -a"])
    assert sim.nodes[0].commands[-1] == "docker inspect 'x; uname -a'"
    assert err.value.exit_status != 0


async def test_fetch_and_pin_host_key(sim: SimCluster, client_key: KeyPair) -> None:
    node = make_node(sim, client_key, pinned=None)
    with pytest.raises(HostKeyNotPinned):
        await node.run(commands.probe())
    line = await node.fetch_host_key()
    assert line.split()[:2] == sim.nodes[0].host_public_key.split()[:2]
    assert fingerprint(line) == sim.nodes[0].host_key_fingerprint
    node.pin(line)
    assert node.pinned_fingerprint == sim.nodes[0].host_key_fingerprint
    assert (await node.run(commands.probe())).exit_status == 0
    await node.close()


@pytest.mark.parametrize("key_type", ["ssh-ed25519", "ecdsa-sha2-nistp256"])
async def test_wrong_pin_raises_host_key_changed(
    sim: SimCluster, client_key: KeyPair, key_type: str
) -> None:
    # A pin of another key type must still be reported as a changed key, not a failed kex.
    impostor = asyncssh.generate_private_key(key_type).export_public_key().decode()
    node = make_node(sim, client_key, pinned=impostor)
    with pytest.raises(HostKeyChanged) as err:
        await node.run(commands.probe())
    assert err.value.expected_fingerprint == fingerprint(impostor)
    assert err.value.actual_fingerprint == sim.nodes[0].host_key_fingerprint
    assert sim.nodes[0].commands == []


async def test_changed_host_key_is_refused_on_reconnect(sim: SimCluster, node: SshNode) -> None:
    await node.run(commands.probe())
    old = sim.nodes[0].host_key_fingerprint
    sim.faults.change_host_key(0)
    await node.close()
    with pytest.raises(HostKeyChanged) as err:
        await node.run(commands.probe())
    assert err.value.expected_fingerprint == old
    assert err.value.actual_fingerprint == sim.nodes[0].host_key_fingerprint != old
    # The user accepts the new key: pin it and carry on.
    node.pin(await node.fetch_host_key())
    assert (await node.run(commands.probe())).exit_status == 0


async def test_rejected_key_and_wrong_user(sim: SimCluster, client_key: KeyPair) -> None:
    wrong_user = make_node(sim, client_key, username="root")
    with pytest.raises(AuthRejected):
        await wrong_user.run(commands.probe())
    sim.faults.reject_key(1)
    rejected = make_node(sim, client_key, 1)
    with pytest.raises(AuthRejected) as err:
        await rejected.run(commands.probe())
    assert err.value.host == "127.0.0.1"


async def test_closed_port_cannot_connect(client_key: KeyPair, sim: SimCluster) -> None:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]
    node = SshNode("127.0.0.1", port, "spark", client_key.private_key, sim.nodes[0].host_public_key)
    with pytest.raises(CannotConnect):
        await node.run(commands.probe())
    with pytest.raises(CannotConnect):
        await node.fetch_host_key()


async def test_exit_status_and_unknown_command(sim: SimCluster, node: SshNode) -> None:
    result = await node.run(["definitely-not-a-command"], check=False)
    assert result.exit_status == 127
    assert "not found" in result.stderr
    with pytest.raises(CommandFailed) as err:
        await node.run(commands.docker_action("restart", "no-such-container"))
    assert "No such container" in err.value.stderr
    assert err.value.command == "docker restart no-such-container"


async def test_timeout_closes_the_channel_and_keeps_the_connection(node: SshNode) -> None:
    with pytest.raises(CommandTimeout):
        await node.run(commands.docker_logs("vllm_node", follow=True), timeout=0.3)
    assert (await node.run(commands.probe())).exit_status == 0


async def test_stream_lines_follows_and_stops(sim: SimCluster, node: SshNode) -> None:
    # `-f` never ends by itself while the container runs: leaving the loop must close it.
    lines: list[str] = []
    stream = node.stream_lines(commands.docker_logs("vllm_node", follow=True, tail="all"))
    async with asyncio.timeout(30), contextlib.aclosing(stream):
        async for line in stream:
            lines.append(line)
            if "Application startup complete." in line:
                break
    assert lines[-1] == "INFO:     Application startup complete."
    assert all(not line.endswith("\n") for line in lines)
    assert (await node.run(commands.probe())).exit_status == 0


async def test_stream_lines_ends_with_the_command(node: SshNode) -> None:
    lines = [line async for line in node.stream_lines(["docker", "logs", "vllm_node"])]
    assert "INFO:     Application startup complete." in lines


async def test_idle_drop_reconnects_transparently(sim: SimCluster, node: SshNode) -> None:
    await node.run(commands.probe())
    for conn in list(sim.nodes[0].connections):
        conn.abort()
    # The client has seen the hang-up (not merely not yet noticed it) before the next command.
    async with asyncio.timeout(30):
        await node.wait_closed()
    assert not node.connected
    assert (await node.run(commands.probe())).exit_status == 0
    assert node.connected


async def test_drop_mid_command_raises_then_recovers(sim: SimCluster, node: SshNode) -> None:
    await node.run(commands.probe())
    sim.faults.drop_ssh_mid_command(True)
    with pytest.raises(CannotConnect):
        await node.run(commands.docker_ps())
    sim.faults.drop_ssh_mid_command(False)
    result = await node.run(commands.docker_ps())
    assert "vllm_node" in result.stdout


async def test_many_concurrent_commands_share_one_connection(
    sim: SimCluster, node: SshNode
) -> None:
    # More than OpenSSH's 10 sessions per connection: the node queues the extra ones.
    follow = node.stream_lines(commands.docker_logs("vllm_node", follow=True))
    first = await anext(follow)
    results = await asyncio.gather(*(node.run(commands.probe()) for _ in range(20)))
    await follow.aclose()
    assert first
    assert all(result.exit_status == 0 for result in results)
    assert len(sim.nodes[0].connections) == 1
