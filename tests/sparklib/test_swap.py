"""SwapRunner against the simulated head node: success, timeout, crash, concurrency."""

from __future__ import annotations

import asyncio

import pytest

from custom_components.spark_control.sparklib.catalog import Catalog, load_bundled_models
from custom_components.spark_control.sparklib.errors import (
    AuthRejected,
    CommandFailed,
    CommandTimeout,
    HostKeyNotPinned,
    InvalidInput,
    ServiceUnreachable,
    SparkError,
    SwapFailed,
    SwapInProgress,
    swap_error_cause,
)
from custom_components.spark_control.sparklib.http_api import ServiceApi
from custom_components.spark_control.sparklib.keys import KeyPair
from custom_components.spark_control.sparklib.ssh import SshNode
from custom_components.spark_control.sparklib.swap import SwapProgress, SwapRunner
from tests.sim import SimCluster

from .conftest import make_node

CATALOG = Catalog(load_bundled_models())
REPO = "~/spark-vllm-docker"


def phases(progress: list[SwapProgress]) -> list[str]:
    """Statuses in order, consecutive repeats folded."""
    folded: list[str] = []
    for item in progress:
        if not folded or folded[-1] != item.status:
            folded.append(item.status)
    return folded


async def test_swap_success(sim: SimCluster, node: SshNode, api: ServiceApi) -> None:
    entry = CATALOG.get("qwen3-vl")
    runner = SwapRunner(node, api, REPO)
    seen: list[SwapProgress] = []
    result = await runner.swap(entry, nodes=["127.0.0.1"], timeout=30, on_progress=seen.append)

    assert phases(seen) == ["stopping", "starting", "loading", "ready"]
    assert result.model == "qwen3-vl"
    assert result.served_models == [entry.repo_id]
    assert seen[-1].last_line is not None
    assert "Application startup complete." in seen[-1].last_line
    assert all(item.model == "qwen3-vl" for item in seen)
    assert [item.elapsed for item in seen] == sorted(item.elapsed for item in seen)
    assert runner.progress == seen[-1]
    assert not runner.busy

    sent = sim.nodes[0].commands
    assert sent[0] == f"cd {REPO} && ./launch-cluster.sh stop"
    assert sent[1].startswith(f"cd {REPO} && ./launch-cluster.sh --solo -d exec vllm serve ")
    assert f"serve {entry.repo_id} --port " in sent[1]
    assert sent[2].startswith("docker logs -f --since 20")
    assert (await api.vllm_state()).models == [entry.repo_id]


async def test_swap_timeout(sim: SimCluster, node: SshNode, api: ServiceApi) -> None:
    # The deadline must pass while the model loads: time enough to reach the load on a loaded
    # machine, and a load far longer than that.
    sim.faults.slow_start(120)
    seen: list[SwapProgress] = []
    with pytest.raises(SwapFailed) as err:
        await SwapRunner(node, api, REPO).swap(
            CATALOG.get("gemma4"), nodes=["127.0.0.1"], timeout=5, on_progress=seen.append
        )
    assert err.value.reason == "timeout after 5 s"
    assert (err.value.cause, err.value.detail) == ("timeout", "5")
    assert err.value.model == "gemma4"
    assert phases(seen)[-1] == "failed"
    assert "loading" in phases(seen)


async def test_swap_crash_during_load(sim: SimCluster, node: SshNode, api: ServiceApi) -> None:
    sim.faults.crash_on_load(True)
    seen: list[SwapProgress] = []
    with pytest.raises(SwapFailed) as err:
        await SwapRunner(node, api, REPO).swap(
            CATALOG.get("qwen36"), nodes=["127.0.0.1"], timeout=30, on_progress=seen.append
        )
    assert err.value.reason == f"crashed: {err.value.detail}"
    assert err.value.cause == "crashed"
    assert "RuntimeError" in err.value.detail
    assert any("RuntimeError" in line for line in err.value.last_lines)
    assert any("Traceback" in line for line in err.value.last_lines)
    assert 0 < len(err.value.last_lines) <= 20
    assert phases(seen) == ["stopping", "starting", "loading", "failed"]


async def test_swap_fails_soon_when_the_server_is_killed_during_load(
    sim: SimCluster, node: SshNode, api: ServiceApi
) -> None:
    """vLLM's server dies without a line (the OOM killer) while its `sleep infinity` container
    runs on, so the log follow never ends: the swap sees the port it had answered on refuse,
    and fails then rather than at its deadline."""
    entry = CATALOG.get("qwen36")
    sim.faults.kill_on_load(entry.repo_id)
    sim.faults.slow_start(4)  # a load the swap sees answering (503) before the kill, at 70 %
    with pytest.raises(SwapFailed) as err:
        await SwapRunner(node, api, REPO).swap(entry, nodes=["127.0.0.1"], timeout=600)
    assert err.value.reason == "vLLM exited before startup completed"
    assert err.value.cause == "server_exited"
    assert sim.containers["vllm_node"].running
    assert not any("Traceback" in line for line in err.value.last_lines)


async def test_concurrent_swap_is_refused(sim: SimCluster, node: SshNode, api: ServiceApi) -> None:
    runner = SwapRunner(node, api, REPO)
    first = asyncio.create_task(
        runner.swap(CATALOG.get("qwen3-vl"), nodes=["127.0.0.1"], timeout=30)
    )
    while not runner.busy:
        await asyncio.sleep(0)
    with pytest.raises(SwapInProgress) as err:
        await runner.swap(CATALOG.get("gemma4"), nodes=["127.0.0.1"], timeout=30)
    assert err.value.model == "qwen3-vl"
    assert (await first).model == "qwen3-vl"
    # Once the first finished, the next swap runs.
    assert (await runner.swap(CATALOG.get("gemma4"), nodes=["127.0.0.1"], timeout=30)).model == (
        "gemma4"
    )


async def test_ssh_error_fails_the_swap(
    sim: SimCluster, client_key: KeyPair, api: ServiceApi
) -> None:
    node = make_node(sim, client_key, username="nobody")
    seen: list[SwapProgress] = []
    with pytest.raises(SwapFailed) as err:
        await SwapRunner(node, api, REPO).swap(
            CATALOG.get("qwen36"), nodes=["127.0.0.1"], timeout=30, on_progress=seen.append
        )
    assert isinstance(err.value.__cause__, AuthRejected)
    assert phases(seen) == ["stopping", "failed"]
    # The kind and the node, to be told in any language; the English stays in `reason`.
    assert (err.value.cause, err.value.detail) == ("ssh_key_rejected", node.name)
    assert err.value.reason == f"SSH key rejected by {node.name}"


@pytest.mark.parametrize(
    ("error", "cause", "detail"),
    [
        (CommandTimeout("docker logs", 120), "command_timeout", "120"),
        (CommandFailed("x", 1, "warning\nError: no such container\n"), "command_failed",
         "Error: no such container"),
        (CommandFailed("x", 2, ""), "command_failed", "exit 2"),
        (ServiceUnreachable("vllm", "http://h:8000/health", "timed out"), "http_timeout",
         "http://h:8000/health"),
        (ServiceUnreachable("vllm", "http://h:8000/health", "refused", refused=True),
         "http_unreachable", "http://h:8000/health"),
        (HostKeyNotPinned("h"), "error", "No pinned host key for h; validate the cluster first"),
    ],
)  # fmt: skip
def test_swap_error_causes(error: SparkError, cause: str, detail: str) -> None:
    assert swap_error_cause(error) == (cause, detail)


async def test_cluster_model_needs_two_nodes(
    sim: SimCluster, node: SshNode, api: ServiceApi
) -> None:
    with pytest.raises(InvalidInput):
        await SwapRunner(node, api, REPO).swap(
            CATALOG.get("qwen2.5-72b"), nodes=["127.0.0.1"], timeout=30
        )
    assert sim.nodes[0].commands == []


async def test_swap_survives_a_dropped_log_follow(
    sim: SimCluster, node: SshNode, api: ServiceApi
) -> None:
    sim.faults.slow_start(0.5)
    seen: list[SwapProgress] = []
    dropped = asyncio.Event()

    def drop_once(progress: SwapProgress) -> None:
        seen.append(progress)
        if progress.status == "loading" and progress.last_line and not dropped.is_set():
            dropped.set()
            for conn in list(sim.nodes[0].connections):
                conn.abort()

    entry = CATALOG.get("gemma4")
    result = await SwapRunner(node, api, REPO).swap(
        entry, nodes=["127.0.0.1"], timeout=30, on_progress=drop_once
    )
    assert dropped.is_set()
    assert result.served_models == [entry.repo_id]
    follows = [c for c in sim.nodes[0].commands if c.startswith("docker logs -f")]
    assert len(follows) == 2
    # Lines seen before the drop are not reported twice.
    lines = [item.last_line for item in seen if item.status == "loading" and item.last_line]
    assert len(lines) == len(set(lines))


async def test_claim_is_the_one_busy_flag(sim: SimCluster, node: SshNode, api: ServiceApi) -> None:
    """A claim refuses a second one at once (no task has to run first), a swap only runs under
    its own claim, and releasing frees the runner."""
    runner = SwapRunner(node, api, REPO)
    claim = runner.claim("gemma4")
    assert (runner.busy, runner.target) == (True, "gemma4")
    with pytest.raises(SwapInProgress) as err:
        runner.claim("qwen36")
    assert err.value.model == "gemma4"
    with pytest.raises(SwapInProgress):
        await runner.swap(CATALOG.get("qwen36"), nodes=["127.0.0.1"], timeout=30, claim=claim)
    result = await runner.swap(CATALOG.get("gemma4"), nodes=["127.0.0.1"], timeout=30, claim=claim)
    assert result.model == "gemma4"
    assert runner.busy  # the caller still holds it
    claim.release()
    assert (runner.busy, runner.target) == (False, None)
    assert sim.nodes[0].commands.count(f"cd {REPO} && ./launch-cluster.sh stop") == 1
