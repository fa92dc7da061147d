"""Each fault switch, observed on the real sockets."""

from __future__ import annotations

import asyncio

import aiohttp
import asyncssh
import pytest

from tests.sim import SimCluster
from tests.sim.service import SimService
from tests.sim.tests.conftest import SshConnect, known_hosts_for
from tests.sim.tests.speech_helpers import silence_wav, transcribe


async def serves_again(service: SimService, http: aiohttp.ClientSession, url: str) -> None:
    """Wait until `service` has booted with its port open, then see it healthy on the socket."""
    await service.wait_serving()
    async with http.get(url) as response:
        assert response.status == 200


async def test_wedge_until_container_restart(sim: SimCluster, ssh: SshConnect) -> None:
    sim.faults.wedge("parakeet")
    async with aiohttp.ClientSession() as http:
        failed = await transcribe(http, sim.parakeet.url, silence_wav())
        assert failed.status == 500
        assert "CUBLAS_STATUS_EXECUTION_FAILED" in await failed.text()
        async with http.get(f"{sim.parakeet.url}/health") as response:
            assert response.status == 200  # the wedge does not show on /health
        log = sim.containers["parakeet-asr"].log_lines
        assert any(
            "RuntimeError: CUDA error: CUBLAS_STATUS_EXECUTION_FAILED" in line for line in log
        )

        conn = await ssh(1)
        restarted = await conn.run("docker restart parakeet-asr")
        assert (restarted.exit_status, restarted.stdout) == (0, "parakeet-asr\n")
        assert sim.containers["parakeet-asr"].restarts == 1
        await serves_again(sim.parakeet, http, f"{sim.parakeet.url}/health")
        recovered = await transcribe(http, sim.parakeet.url, silence_wav())
        assert recovered.status == 200
        logs = await conn.run("docker logs parakeet-asr")
        assert "Uvicorn running on http://0.0.0.0:8000 (Press CTRL+C to quit)" in logs.stdout


async def test_hang_accepts_but_never_answers(sim: SimCluster) -> None:
    sim.faults.hang("parakeet")
    reader, writer = await asyncio.open_connection(sim.parakeet.port.host, sim.parakeet.port.port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(1), 0.3)  # connected, request sent, no answer
    writer.close()
    await writer.wait_closed()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.3)) as http:
        with pytest.raises(TimeoutError):
            await http.get(f"{sim.parakeet.url}/health")
    await sim.faults.clear()
    async with aiohttp.ClientSession() as http, http.get(f"{sim.parakeet.url}/health") as response:
        assert response.status == 200


async def test_refuse_closes_port_while_container_runs(sim: SimCluster, ssh: SshConnect) -> None:
    task = sim.faults.refuse("magpie")
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectorError):
            await http.get(f"{sim.magpie.url}/v1/health/ready")  # refused before awaiting
        await task
        conn = await ssh(1)
        ps = await conn.run("docker ps --format '{{json .}}'")
        assert '"Names": "magpie-tts"' in ps.stdout
        await sim.faults.clear()
        async with http.get(f"{sim.magpie.url}/v1/health/ready") as response:
            assert response.status == 200


async def test_slow_start_delays_speech_port(sim: SimCluster, ssh: SshConnect) -> None:
    sim.faults.slow_start(1.5)
    conn = await ssh(1)
    await conn.run("docker restart magpie-tts")
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectorError):
            await http.get(f"{sim.magpie.url}/v1/health/ready")
        await serves_again(sim.magpie, http, f"{sim.magpie.url}/v1/health/ready")


async def test_drop_ssh_mid_command(sim: SimCluster, ssh: SshConnect) -> None:
    sim.faults.drop_ssh_mid_command(True)
    conn = await ssh(1)
    result = await conn.run("docker logs parakeet-asr")
    # The first line made it out; then the link died: no exit status, no more output.
    assert result.stdout == "INFO:     Uvicorn running on http://0.0.0.0:8000\n"
    assert result.exit_status is None
    with pytest.raises(asyncssh.ChannelOpenError):
        await conn.run("uname -srm")
    sim.faults.drop_ssh_mid_command(False)
    fresh = await ssh(1)
    assert (await fresh.run("uname -srm")).exit_status == 0


async def test_changed_host_key_fails_pinning(sim: SimCluster, ssh: SshConnect) -> None:
    old_fingerprint = sim.nodes[1].host_key_fingerprint
    sim.faults.change_host_key(1)
    assert sim.nodes[1].host_key_fingerprint != old_fingerprint
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        await ssh(1)  # pinned to the key from before the change
    repinned = await ssh(1, known_hosts=known_hosts_for(sim, 1))
    assert (await repinned.run("uname -srm")).exit_status == 0


async def test_rejected_and_unknown_keys(sim: SimCluster, ssh: SshConnect) -> None:
    sim.faults.reject_key(0)
    with pytest.raises(asyncssh.PermissionDenied):
        await ssh(0)
    assert (await (await ssh(1)).run("uname -srm")).exit_status == 0
    with pytest.raises(asyncssh.PermissionDenied):
        await ssh(1, username="root")
    stranger = asyncssh.generate_private_key("ssh-ed25519")
    with pytest.raises(asyncssh.PermissionDenied):
        await ssh(1, client_keys=[stranger])
    await sim.faults.clear()
    assert (await (await ssh(0)).run("uname -srm")).exit_status == 0


async def test_wedge_on_vllm_and_magpie(sim: SimCluster) -> None:
    sim.faults.wedge("vllm")
    sim.faults.wedge("magpie")
    async with aiohttp.ClientSession() as http:
        payload = {"messages": [{"role": "user", "content": "x"}]}
        async with http.post(f"{sim.vllm.url}/v1/chat/completions", json=payload) as response:
            assert response.status == 500
        form = aiohttp.FormData({"text": "hello"})
        async with http.post(f"{sim.magpie.url}/v1/audio/synthesize", data=form) as response:
            assert response.status == 500
            assert "CUBLAS_STATUS_EXECUTION_FAILED" in await response.text()


def test_fault_switches_validate_arguments(sim: SimCluster) -> None:
    with pytest.raises(ValueError, match="unknown service"):
        sim.faults.wedge("whisper")
    with pytest.raises(ValueError, match="no node 5"):
        sim.faults.change_host_key(5)
    with pytest.raises(ValueError, match=">= 0"):
        sim.faults.slow_start(-1)
