"""ServiceApi against the simulated services over real HTTP."""

from __future__ import annotations

import aiohttp
import pytest

from custom_components.spark_control.sparklib import commands
from custom_components.spark_control.sparklib.errors import ServiceUnreachable
from custom_components.spark_control.sparklib.http_api import Endpoint, ServiceApi
from custom_components.spark_control.sparklib.metrics import MetricsTracker, parse_vllm_metrics
from custom_components.spark_control.sparklib.ssh import SshNode
from tests.sim import SimCluster

from .conftest import sim_endpoints


async def test_all_healthy(sim: SimCluster, api: ServiceApi) -> None:
    state = await api.vllm_state()
    assert state.healthy
    assert not state.loading
    assert state.models == ["RedHatAI/Qwen3.6-35B-A3B-NVFP4"]
    assert state.max_model_len == 32768
    assert await api.parakeet_healthy()
    assert await api.magpie_ready()


async def test_refused_and_hung_services_are_unreachable(
    sim: SimCluster, api: ServiceApi, session: aiohttp.ClientSession
) -> None:
    await sim.faults.refuse("magpie")
    with pytest.raises(ServiceUnreachable) as err:
        await api.magpie_ready()
    assert err.value.service == "magpie"
    assert err.value.url.endswith("/v1/health/ready")
    sim.faults.hang("parakeet")
    impatient = ServiceApi(session, sim_endpoints(sim), timeout=0.5)
    with pytest.raises(ServiceUnreachable) as err:
        await impatient.parakeet_healthy()
    assert err.value.detail == "timed out"
    assert not err.value.refused
    await sim.faults.clear()
    assert await api.magpie_ready()
    assert await api.parakeet_healthy()


async def test_vllm_stopped_then_loading(sim: SimCluster, api: ServiceApi, node: SshNode) -> None:
    await node.run(commands.docker_action("stop", "vllm_node"))
    with pytest.raises(ServiceUnreachable) as err:
        await api.vllm_state()
    assert err.value.refused  # nothing listens: stopped, not hung
    sim.faults.slow_start(120)  # still loading when asked, however slow the machine
    await sim.serve_model(sim.config.served_model)  # what launch-cluster.sh exec does
    state = await api.vllm_state()
    assert state.loading
    assert not state.healthy
    assert state.models == []


async def test_metrics_move_with_real_traffic(sim: SimCluster, api: ServiceApi) -> None:
    tracker = MetricsTracker()
    tracker.update(parse_vllm_metrics(await api.vllm_metrics_text(), now=0.0))
    session = api._session
    for _ in range(2):
        async with session.post(
            sim.vllm.url + "/v1/completions",
            json={
                "model": "RedHatAI/Qwen3.6-35B-A3B-NVFP4",
                "prompt": "hello there",
                "max_tokens": 8,
            },
        ) as response:
            assert response.status == 200
    metrics = tracker.update(parse_vllm_metrics(await api.vllm_metrics_text(), now=2.0))
    assert metrics.generation_tokens_per_s is not None
    assert metrics.generation_tokens_per_s > 0
    assert metrics.ttft_median_s is not None
    assert metrics.ttft_median_s > 0
    assert metrics.kv_cache_usage_pct is not None


def test_endpoint_urls() -> None:
    assert Endpoint("spark-1", 8888).url == "http://spark-1:8888"
    assert Endpoint("fe80::1", 8000).url == "http://[fe80::1]:8000"
