"""vLLM engine faults over real sockets: a frozen generation, a slow prefill, a dead engine.

What the control plane reads to tell them apart is checked here as a client sees it: the
`/metrics` counters and gauges, `/health`, the streams, the container log over SSH and the GPU
power `nvidia-smi` prints on the head node.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from tests.sim import SimCluster, SimConfig
from tests.sim.tests.conftest import SshConnect
from tests.sim.tests.test_vllm import MODEL, metric_values

POWER_QUERY = "nvidia-smi --query-gpu=power.draw --format=csv,noheader,nounits"


@pytest.fixture
def sim_config(client_key_pair: tuple[str, str]) -> SimConfig:
    return SimConfig(
        authorized_keys=[client_key_pair[1]], load_seconds=0.3, token_rate=50.0, restart_delay=0.1
    )


async def _gpu_power(ssh: SshConnect) -> float:
    conn = await ssh(0)
    result = await conn.run(POWER_QUERY, check=True)
    return float(str(result.stdout).strip())


async def _drain(response: aiohttp.ClientResponse) -> None:
    """Read what was in flight; for a frozen stream nothing more ever comes."""
    while True:
        await response.content.readline()


def _stream_payload(max_tokens: int = 400) -> dict[str, object]:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": "tell me a long story"}],
        "max_tokens": max_tokens,
        "stream": True,
    }


async def test_frozen_generation_stalls_streams_and_counters(
    sim: SimCluster, http: aiohttp.ClientSession, ssh: SshConnect
) -> None:
    idle_power = await _gpu_power(ssh)
    response = await http.post(f"{sim.vllm.url}/v1/chat/completions", json=_stream_payload())
    try:
        for _ in range(4):  # the role chunk and a few tokens: generation under way
            await response.content.readline()
        busy_power = await _gpu_power(ssh)
        sim.faults.freeze_generation()
        await sim.vllm.container.wait_until(lambda _: sim.vllm.stalled_requests == 1)
        first = await metric_values(http, sim.vllm.url)
        with pytest.raises(TimeoutError):  # half a second of nothing, where tokens came at once
            await asyncio.wait_for(_drain(response), 0.5)
        second = await metric_values(http, sim.vllm.url)
        frozen_power = await _gpu_power(ssh)
        async with http.get(f"{sim.vllm.url}/health") as health:
            assert health.status == 200
    finally:
        response.close()
    assert second["vllm:num_requests_running"] == 1
    assert second["vllm:generation_tokens_total"] == first["vllm:generation_tokens_total"]
    assert busy_power > idle_power
    assert frozen_power == idle_power  # the GPU does no work for a frozen engine

    # A new request is admitted (running rises) but never gets its first token.
    payload = {"model": MODEL, "prompt": "hello", "max_tokens": 3}
    late = asyncio.ensure_future(http.post(f"{sim.vllm.url}/v1/completions", json=payload))
    await sim.vllm.container.wait_until(lambda _: sim.vllm.stalled_requests == 2)
    third = await metric_values(http, sim.vllm.url)
    assert not late.done()
    # The first request's client left, but a frozen engine never processes the abort.
    assert third["vllm:num_requests_running"] == 2
    assert third["vllm:prompt_tokens_total"] == second["vllm:prompt_tokens_total"]

    # A relaunch is a fresh engine: the held request's connection drops, the next request is
    # answered.
    await sim.serve_model(MODEL)
    with pytest.raises(aiohttp.ClientError):
        await late
    await sim.vllm.wait_ready()
    async with http.post(f"{sim.vllm.url}/v1/completions", json=payload) as answered:
        assert answered.status == 200
        assert (await answered.json())["usage"]["completion_tokens"] == 3


async def test_slow_prefill_keeps_the_gpu_busy_and_counts_prompt_tokens_at_the_end(
    sim: SimCluster, http: aiohttp.ClientSession, ssh: SshConnect
) -> None:
    idle_power = await _gpu_power(ssh)
    sim.faults.slow_prefill(0.6)
    payload = {"model": MODEL, "prompt": "a very long document " * 20, "max_tokens": 2}
    pending = asyncio.ensure_future(http.post(f"{sim.vllm.url}/v1/completions", json=payload))
    await sim.vllm.container.wait_until(lambda _: sim.vllm.active_requests == 1)  # prefilling
    during = await metric_values(http, sim.vllm.url)
    prefill_power = await _gpu_power(ssh)
    response = await pending
    async with response:
        usage = (await response.json())["usage"]
    after = await metric_values(http, sim.vllm.url)
    assert during["vllm:num_requests_running"] == 1
    assert during["vllm:generation_tokens_total"] == 0
    assert during["vllm:prompt_tokens_total"] == 0  # V1 reports no partial prefill
    assert prefill_power > idle_power  # unlike a frozen engine, the GPU works
    assert after["vllm:prompt_tokens_total"] == usage["prompt_tokens"]
    assert after["vllm:generation_tokens_total"] == 2


async def test_dead_engine_logs_its_death_and_fails_requests(
    sim: SimCluster, http: aiohttp.ClientSession, ssh: SshConnect
) -> None:
    conn = await ssh(0)
    follow = await conn.create_process("docker logs -f --since 0s vllm_node")
    try:
        sim.faults.kill_engine()
        lines: list[str] = []
        async with asyncio.timeout(30):  # it must come: a deadline a loaded machine keeps
            while not any("EngineDeadError" in line for line in lines):
                lines.append(str(await follow.stdout.readline()))
    finally:
        follow.close()
    assert any("EngineCore encountered a fatal error." in line for line in lines)
    assert any("died unexpectedly" in line for line in lines)
    async with http.get(f"{sim.vllm.url}/health") as health:
        assert health.status == 503
    async with http.post(
        f"{sim.vllm.url}/v1/completions", json={"model": MODEL, "prompt": "x", "max_tokens": 1}
    ) as failed:
        assert failed.status == 500
    await sim.serve_model(MODEL)
    await sim.vllm.wait_ready()
    async with http.get(f"{sim.vllm.url}/health") as health:
        assert health.status == 200


async def test_dead_engine_can_take_the_server_down(
    sim: SimCluster, ssh: SshConnect, http: aiohttp.ClientSession
) -> None:
    """vLLM's default on engine death: the server exits; its container (`sleep infinity`)
    keeps running, so only the port tells."""
    sim.faults.kill_engine(exit_server=True)
    conn = await ssh(0)
    inspected = await conn.run("docker inspect vllm_node", check=True)
    (state,) = json.loads(str(inspected.stdout))
    assert state["State"]["Status"] == "running"
    logs = await conn.run("docker logs --tail 3 vllm_node", check=True)
    assert "Engine failed, terminating server." in str(logs.stdout)
    await sim.vllm.container.wait_until(lambda _: not sim.vllm.port.listening)
    with pytest.raises(aiohttp.ClientConnectorError):
        await http.get(f"{sim.vllm.url}/health")


async def test_a_killed_server_leaves_its_container_without_it_and_writes_nothing(
    sim: SimCluster, ssh: SshConnect, http: aiohttp.ClientSession
) -> None:
    """The kernel's OOM killer takes vLLM's server while it serves: no line in its log, its
    port refused, and `docker top` lists only the container's `sleep infinity`, where it listed
    `vllm serve` before; stopped (and so removed, being run `--rm`) it cannot be listed."""
    conn = await ssh(0)
    before = await conn.run("docker top vllm_node", check=True)
    header, *processes = str(before.stdout).splitlines()
    assert header.split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert [line.split(maxsplit=7)[7] for line in processes] == [
        "sleep infinity",
        f"/usr/bin/python3 /usr/local/bin/vllm serve {MODEL} --host 0.0.0.0 --port 8888",
    ]
    lines = len(sim.vllm.container.logs)
    await sim.faults.kill_server()
    with pytest.raises(aiohttp.ClientConnectorError):
        await http.get(f"{sim.vllm.url}/health")
    assert len(sim.vllm.container.logs) == lines
    after = await conn.run("docker top vllm_node", check=True)
    assert [line.split(maxsplit=7)[7] for line in str(after.stdout).splitlines()[1:]] == [
        "sleep infinity"
    ]
    await conn.run("docker stop vllm_node", check=True)
    stopped = await conn.run("docker top vllm_node")
    assert stopped.exit_status == 1
    assert "No such container: vllm_node" in str(stopped.stderr)
