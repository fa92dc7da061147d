"""Deep probes against the simulated services over real HTTP."""

from __future__ import annotations

import aiohttp
import pytest

from custom_components.spark_control.sparklib.probes import DeepProber
from custom_components.spark_control.sparklib.recovery import ServiceHealth
from tests.integration.recovery.conftest import base_urls
from tests.sim import SimCluster


def _prober(
    sim: SimCluster, session: aiohttp.ClientSession, clip: bytes, timeout: float = 30.0
) -> DeepProber:
    # The default deadline is for probes that must answer: one a loaded machine keeps.
    return DeepProber(session, base_urls(sim), clip_wav=clip, timeout=timeout)


async def test_healthy_services_do_real_work(
    sim: SimCluster, session: aiohttp.ClientSession, probe_clip: bytes
) -> None:
    prober = _prober(sim, session, probe_clip)
    results = {service: await prober.probe(service) for service in prober.services}
    assert {s: r.health for s, r in results.items()} == dict.fromkeys(
        ("vllm", "parakeet", "magpie"), ServiceHealth.HEALTHY
    )
    # The clip really went through the recognizer, not just an HTTP 200.
    assert "health check" in results["parakeet"].detail.lower()
    assert "bytes of audio" in results["magpie"].detail
    assert "completed one token" in results["vllm"].detail


@pytest.mark.parametrize("service", ["parakeet", "magpie"])
async def test_cuda_wedge_behind_a_healthy_health_endpoint(
    sim: SimCluster, session: aiohttp.ClientSession, probe_clip: bytes, service: str
) -> None:
    prober = _prober(sim, session, probe_clip)
    sim.faults.wedge(service)
    assert await prober.is_healthy(service)  # what the 5 s poll sees: all fine
    result = await prober.probe(service)
    assert result.health is ServiceHealth.WEDGED
    assert "500 (CUDA error)" in result.detail
    assert "CUBLAS_STATUS_EXECUTION_FAILED" in result.detail


async def test_hang_is_wedged_after_the_probe_timeout(
    sim: SimCluster, session: aiohttp.ClientSession, probe_clip: bytes
) -> None:
    prober = _prober(sim, session, probe_clip, timeout=0.8)
    sim.faults.hang("parakeet")
    result = await prober.probe("parakeet")
    assert result.health is ServiceHealth.WEDGED
    assert result.detail == "no answer within 0.8 s"
    # The hang never ends by itself: that the probe answered at all is its timeout's doing.
    assert result.elapsed >= 0.8
    assert not await prober.is_healthy("parakeet")


async def test_refused_connection_is_down_not_wedged(
    sim: SimCluster, session: aiohttp.ClientSession, probe_clip: bytes
) -> None:
    prober = _prober(sim, session, probe_clip)
    await sim.faults.refuse("magpie")
    result = await prober.probe("magpie")
    assert result.health is ServiceHealth.DOWN
    assert result.detail.startswith("cannot connect")


def test_probe_clip_must_be_wav(session: aiohttp.ClientSession) -> None:
    with pytest.raises(ValueError, match="WAV"):
        DeepProber(session, {}, clip_wav=b"ID3 not a wav")


async def test_vllm_wedge_and_loading_classify_differently(
    sim: SimCluster,
    session: aiohttp.ClientSession,
    probe_clip: bytes,
) -> None:
    prober = _prober(sim, session, probe_clip)
    sim.faults.wedge("vllm")
    wedged = await prober.probe("vllm")
    assert wedged.health is ServiceHealth.WEDGED
    assert "completion answered 500" in wedged.detail

    # A relaunch reloads the model: /health says 503 meanwhile, which must never read as a wedge
    # (restarting then would abort the load).
    # A load longer than any loaded machine takes to probe it: the test ends while it loads.
    sim.faults.slow_start(120)
    await sim.serve_model(sim.config.served_model)  # a relaunch, as recovery's goes
    await sim.vllm.wait_serving()
    loading = await prober.probe("vllm")
    assert loading.health is ServiceHealth.DOWN
    assert loading.detail.startswith("health check answered 503")
