"""A service going away and coming back: entities, logging, and the metrics poll."""

from __future__ import annotations

import asyncio
import logging

import pytest
from homeassistant.components.select import (
    ATTR_OPTION,
    DOMAIN as SELECT_DOMAIN,
    SERVICE_SELECT_OPTION,
)
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from pytest_homeassistant_custom_component.common import MockConfigEntry

from tests.sim import SimCluster

CONNECTIVITY = "binary_sensor.lab_parakeet_asr_connectivity"


async def _poll(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    await entry.runtime_data.status.async_refresh()
    await hass.async_block_till_done()


async def test_unreachable_service_and_back(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    sim: SimCluster,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A refused port turns the service's health off; the others stay up. Its running switch
    stays on: the container still runs (docker ps), only its port is gone.
    The outage is logged once, and the recovery once."""
    caplog.set_level(logging.INFO, logger="custom_components.spark_control")
    await sim.faults.refuse("parakeet")
    for _ in range(3):
        await _poll(hass, loaded_entry)
    assert hass.states.get(CONNECTIVITY).state == "off"  # type: ignore[union-attr]
    await loaded_entry.runtime_data.metrics.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get("switch.lab_parakeet_asr_running").state == "on"  # type: ignore[union-attr]
    assert hass.states.get("binary_sensor.lab_vllm_connectivity").state == "on"  # type: ignore[union-attr]
    assert hass.states.get("select.lab_vllm_model").state == "Qwen3.6 35B-A3B (NVFP4)"  # type: ignore[union-attr]
    gone = [r for r in caplog.records if "parakeet is unreachable" in r.getMessage()]
    assert len(gone) == 1

    await sim.faults.clear()
    for _ in range(3):
        await _poll(hass, loaded_entry)
    assert hass.states.get(CONNECTIVITY).state == "on"  # type: ignore[union-attr]
    back = [r for r in caplog.records if "parakeet is reachable again" in r.getMessage()]
    assert len(back) == 1


async def test_vllm_down_makes_metrics_unavailable(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """With vLLM refused, its metric sensors are unavailable; GPU sensors are not, and the
    select stays usable (it shows no model and can start one)."""
    await sim.faults.refuse("vllm")
    await _poll(hass, loaded_entry)
    await loaded_entry.runtime_data.metrics.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get("select.lab_vllm_model").state == "unknown"  # type: ignore[union-attr]
    assert hass.states.get("sensor.lab_vllm_kv_cache_usage").state == "unavailable"  # type: ignore[union-attr]
    gpu = [
        state
        for state in hass.states.async_all("sensor")
        if state.entity_id.endswith("_gpu_temperature")
    ]
    assert len(gpu) == 2
    assert all(state.state == "38.0" for state in gpu)

    await sim.faults.clear()
    await _poll(hass, loaded_entry)
    await loaded_entry.runtime_data.metrics.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get("sensor.lab_vllm_kv_cache_usage").state == "0.0"  # type: ignore[union-attr]


async def _ask_vllm(hass: HomeAssistant, sim: SimCluster, model: str) -> None:
    async with async_get_clientsession(hass).post(
        f"{sim.vllm.url}/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 16},
    ) as response:
        assert response.status == 200


async def test_metrics_follow_traffic(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """Tokens/s comes from counter deltas between two polls, time to first token from the
    histogram: unavailable (not unknown) until the served model answered a request, then the
    latest requests' median, kept while vLLM idles, and dropped when a swap restarts vLLM."""
    ttft_id = "sensor.lab_vllm_time_to_first_token"
    assert hass.states.get(ttft_id).state == "unavailable"  # type: ignore[union-attr]
    metrics = loaded_entry.runtime_data.metrics
    for _ in range(2):
        await _ask_vllm(hass, sim, "RedHatAI/Qwen3.6-35B-A3B-NVFP4")
    await metrics.async_refresh()
    await hass.async_block_till_done()
    speed = hass.states.get("sensor.lab_vllm_generation_speed")
    assert speed is not None
    assert float(speed.state) > 0
    ttft = hass.states.get(ttft_id)
    assert ttft is not None
    assert ttft.attributes["unit_of_measurement"] == "ms"
    measured = float(ttft.state)
    assert measured > 0

    # An idle interval: no new figure, the last one stays.
    await metrics.async_refresh()
    await hass.async_block_till_done()
    assert float(hass.states.get("sensor.lab_vllm_generation_speed").state) == 0  # type: ignore[union-attr]
    assert float(hass.states.get(ttft_id).state) == measured  # type: ignore[union-attr]

    # Another model: the previous one's figure says nothing about it.
    await hass.services.async_call(
        SELECT_DOMAIN,
        SERVICE_SELECT_OPTION,
        {ATTR_ENTITY_ID: "select.lab_vllm_model", ATTR_OPTION: "Gemma 4 27B Instruct"},
        blocking=True,
    )
    async with asyncio.timeout(20):  # the swap (and the reading after it) run in the background
        await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get("sensor.lab_vllm_swap_status").state == "ready"  # type: ignore[union-attr]
    # The swap's end reads the metrics at once: no figure of the model before stays.
    assert hass.states.get(ttft_id).state == "unavailable"  # type: ignore[union-attr]
    await _ask_vllm(hass, sim, sim.vllm.model)
    await metrics.async_refresh()
    await hass.async_block_till_done()
    assert float(hass.states.get(ttft_id).state) > 0  # type: ignore[union-attr]


async def test_switch_follows_docker_not_http(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """A container stopped behind HA's back turns its switch off at the next slow poll, while
    the fast poll has not noticed anything yet (the switch reads `docker ps`, not HTTP)."""
    switch = "switch.lab_parakeet_asr_running"
    await sim.world.docker.stop(sim.containers["parakeet-asr"])
    await loaded_entry.runtime_data.metrics.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get(switch).state == "off"  # type: ignore[union-attr]
    assert hass.states.get("switch.lab_magpie_tts_running").state == "on"  # type: ignore[union-attr]
    assert sum("docker ps" in command for command in sim.nodes[1].commands) >= 2

    await sim.world.docker.start(sim.containers["parakeet-asr"])
    await loaded_entry.runtime_data.metrics.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get(switch).state == "on"  # type: ignore[union-attr]


async def test_switch_unavailable_without_ssh(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """When the nodes drop every SSH command, the switches are unavailable (state unknown),
    while the vLLM metrics read over HTTP keep their sensors up; SSH back, switches back."""
    metrics = loaded_entry.runtime_data.metrics
    sim.faults.drop_ssh_mid_command()
    await metrics.async_refresh()
    await hass.async_block_till_done()
    assert metrics.data.containers is None
    assert metrics.data.container_running("vllm") is None
    assert hass.states.get("switch.lab_vllm_running").state == "unavailable"  # type: ignore[union-attr]
    assert hass.states.get("sensor.lab_vllm_kv_cache_usage").state == "0.0"  # type: ignore[union-attr]

    await sim.faults.clear()
    await metrics.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get("switch.lab_vllm_running").state == "on"  # type: ignore[union-attr]
