"""Model swap realism: launch returns at once, the log fills over load_seconds, /health flips."""

from __future__ import annotations

import asyncio
import shlex
import time
from datetime import UTC, datetime

import aiohttp

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
    result = await conn.run(launch_command(sim.config.repo_path, detached=False))
    assert result.exit_status == 0
    assert result.stdout.rstrip().endswith("INFO:     Application startup complete.")
    assert sim.vllm.model == NEW_MODEL


async def test_docker_restart_reloads_same_model(sim: SimCluster, ssh: SshConnect) -> None:
    conn = await ssh(0)
    result = await conn.run("docker restart vllm_node")
    assert (result.exit_status, result.stdout) == (0, "vllm_node\n")
    assert sim.vllm.phase == "loading"
    assert sim.containers["vllm_node"].restarts == 1
    await sim.vllm.wait_ready()
    assert sim.vllm.model == sim.config.served_model


async def test_crash_on_load_ends_with_oom_and_exit(sim: SimCluster, ssh: SshConnect) -> None:
    sim.faults.crash_on_load(True)
    conn = await ssh(0)
    follower = await ssh(0)
    assert (await conn.run(launch_command(sim.config.repo_path))).exit_status == 0
    process = await follower.create_process("docker logs -f --tail 0 vllm_node")
    # Ends when the container dies (0.7 s into the load); the deadline allows for a loaded machine.
    output = await asyncio.wait_for(process.stdout.read(), 30)
    assert "Traceback (most recent call last):" in output
    assert output.rstrip().endswith("Application shutdown complete.") is False
    assert "RuntimeError: CUDA out of memory." in output
    container = sim.containers["vllm_node"]
    assert (container.state, container.exit_code) == ("exited", 1)
    async with aiohttp.ClientSession() as http:
        try:
            await http.get(f"{sim.vllm.url}/health")
        except aiohttp.ClientConnectorError:
            refused = True
        else:
            refused = False
    assert refused
    status = await conn.run(f"cd {sim.config.repo_path} && ./launch-cluster.sh status")
    assert "vllm_node on spark-1: exited" in status.stdout


async def test_slow_start_stretches_the_load(sim: SimCluster, ssh: SshConnect) -> None:
    sim.faults.slow_start(1.0)
    conn = await ssh(0)
    restarted_at = time.monotonic()
    assert (await conn.run("docker restart vllm_node")).exit_status == 0
    await sim.vllm.wait_ready()
    # The load began after the restart was sent: its end shows at least the stretched length
    # (a lower bound, which a slow machine only lengthens).
    assert time.monotonic() - restarted_at >= sim.config.load_seconds + 1.0
