"""Model swap realism: launch returns at once, the log fills over load_seconds, /health flips."""

from __future__ import annotations

import asyncio
import json
import shlex
import time
from datetime import UTC, datetime

import aiohttp
import pytest

from tests.sim import SimCluster
from tests.sim.tests.conftest import SshConnect

NEW_MODEL = "Qwen/Qwen2.5-72B-Instruct-AWQ"


def launch_command(repo: str, model: str = NEW_MODEL, *, detached: bool = True) -> str:
    argv = ["./launch-cluster.sh", "-n", "10.0.0.1,10.0.0.2"]
    argv += ["-d"] if detached else []
    argv += ["exec", "vllm", "serve", model, "--port", "8888", "--host", "0.0.0.0"]
    argv += ["--max-model-len", "16384", "--gpu-memory-utilization", "0.85"]
    argv += ["--enable-prefix-caching", "--kv-cache-dtype", "fp8"]
    argv += ["--load-format", "fastsafetensors", "-tp", "2"]
    return f"cd {repo} && {shlex.join(argv)}"


async def health(http: aiohttp.ClientSession, url: str) -> int:
    async with http.get(f"{url}/health") as response:
        return response.status


async def test_swap_follows_log_to_startup_complete(sim: SimCluster, ssh: SshConnect) -> None:
    conn = await ssh(0)
    repo = sim.config.repo_path
    assert (await conn.run(f"cd {repo} && ./launch-cluster.sh stop")).exit_status == 0
    follower = await ssh(0)
    # The model must still load when /health is first asked: 5 s, not the config's 1 s, is a
    # window a loaded machine does not miss between the launch returning and that request.
    sim.faults.slow_start(4)
    launched_at = datetime.now(UTC).isoformat()
    launched = await conn.run(launch_command(repo))
    assert launched.exit_status == 0
    assert launched.stdout.splitlines()[0] == "Starting cluster..."
    assert launched.stdout.splitlines()[-1].startswith(f"Dispatched: vllm serve {NEW_MODEL}")

    async with aiohttp.ClientSession() as http:
        await sim.vllm.port.reconcile()
        assert await health(http, sim.vllm.url) == 503
        process = await follower.create_process(
            shlex.join(["docker", "logs", "-f", "--since", launched_at, "vllm_node"])
        )
        seen: list[str] = []
        async with asyncio.timeout(30):
            async for line in process.stdout:
                seen.append(line.rstrip("\n"))
                if "Application startup complete." in line:
                    break
        process.close()
        assert await health(http, sim.vllm.url) == 200
        async with http.get(f"{sim.vllm.url}/v1/models") as response:
            (card,) = (await response.json())["data"]
    assert card["id"] == NEW_MODEL
    assert card["max_model_len"] == 16384
    assert any("Starting vLLM API server 0 on http://0.0.0.0:8888" in line for line in seen)
    assert any("Loading weights took" in line for line in seen)
    assert any("Model loading took" in line for line in seen)
    assert any(line.endswith("Available routes are:") for line in seen)
    assert seen[-1] == "INFO:     Application startup complete."


async def test_attached_launch_returns_when_up(sim: SimCluster, ssh: SshConnect) -> None:
    conn = await ssh(0)
    assert (
        await conn.run(f"cd {sim.config.repo_path} && ./launch-cluster.sh stop")
    ).exit_status == 0
    result = await conn.run(launch_command(sim.config.repo_path, detached=False))
    assert result.exit_status == 0
    assert result.stdout.rstrip().endswith("INFO:     Application startup complete.")
    assert sim.vllm.model == NEW_MODEL


async def test_launch_into_a_serving_container_fails_to_bind(
    sim: SimCluster, ssh: SshConnect, http: aiohttp.ClientSession
) -> None:
    """launch-cluster.sh execs into a container that already runs: a second `vllm serve`
    finds the port taken and dies; the first one serves on."""
    conn = await ssh(0)
    result = await conn.run(launch_command(sim.config.repo_path, detached=False))
    assert result.exit_status == 1
    assert "Cluster containers are already running. Skipping launch." in result.stdout
    assert "OSError: [Errno 98] Address already in use" in sim.vllm.container.log_lines
    assert sim.vllm.model == sim.config.served_model
    assert await health(http, sim.vllm.url) == 200


async def test_docker_restart_brings_back_only_the_container(
    sim: SimCluster, ssh: SshConnect, http: aiohttp.ClientSession
) -> None:
    """The container runs `sleep infinity`: a restart ends vLLM and nothing starts it again."""
    conn = await ssh(0)
    result = await conn.run("docker restart vllm_node")
    assert (result.exit_status, result.stdout) == (0, "vllm_node\n")
    container = sim.containers["vllm_node"]
    assert (container.state, container.restarts) == ("running", 1)
    (row,) = [
        json.loads(line)
        for line in (await conn.run("docker ps --format '{{json .}}'")).stdout.splitlines()
        if json.loads(line)["Names"] == "vllm_node"
    ]
    assert row["Command"] == '"sleep infinity"'
    with pytest.raises(aiohttp.ClientConnectorError):
        await health(http, sim.vllm.url)
    assert sim.vllm.phase == "stopped"
    # Only the launch path serves again, into the running container.
    launched = await conn.run(launch_command(sim.config.repo_path))
    assert "Cluster containers are already running. Skipping launch." in launched.stdout
    await sim.vllm.wait_ready()
    assert await health(http, sim.vllm.url) == 200


async def test_crash_on_load_ends_the_server_not_the_container(
    sim: SimCluster, ssh: SshConnect, http: aiohttp.ClientSession
) -> None:
    sim.faults.crash_on_load(True)
    conn = await ssh(0)
    follower = await ssh(0)
    assert (
        await conn.run(f"cd {sim.config.repo_path} && ./launch-cluster.sh stop")
    ).exit_status == 0
    assert (await conn.run(launch_command(sim.config.repo_path))).exit_status == 0
    process = await follower.create_process("docker logs -f vllm_node")
    seen: list[str] = []
    # The crash comes 0.7 s into the load; the deadline allows for a loaded machine.
    async with asyncio.timeout(30):
        while not any("RuntimeError: CUDA out of memory." in line for line in seen):
            seen.append(str(await process.stdout.readline()))
    process.close()
    assert any("Traceback (most recent call last):" in line for line in seen)
    container = sim.containers["vllm_node"]
    assert container.state == "running"  # `sleep infinity` goes on
    await sim.vllm.container.wait_until(lambda _: not sim.vllm.port.listening)
    with pytest.raises(aiohttp.ClientConnectorError):
        await health(http, sim.vllm.url)
    status = await conn.run(f"cd {sim.config.repo_path} && ./launch-cluster.sh status")
    assert "vllm_node on spark-1: running" in status.stdout


async def test_slow_start_stretches_the_load(sim: SimCluster, ssh: SshConnect) -> None:
    sim.faults.slow_start(1.0)
    conn = await ssh(0)
    assert (
        await conn.run(f"cd {sim.config.repo_path} && ./launch-cluster.sh stop")
    ).exit_status == 0
    restarted_at = time.monotonic()
    assert (await conn.run(launch_command(sim.config.repo_path))).exit_status == 0
    await sim.vllm.wait_ready()
    # The load began after the restart was sent: its end shows at least the stretched length
    # (a lower bound, which a slow machine only lengthens).
    assert time.monotonic() - restarted_at >= sim.config.load_seconds + 1.0
