"""vLLM's own watch in a real Home Assistant against the simulator over real sockets: a frozen
generation is found from `/metrics` and relaunched within vLLM's budget; a slow prefill, a busy
batch, a swap and a load never are; an engine-death line in the container log and a failing
cheap probe lead to the same relaunch.

The watch runs on HA's timers: tests move them with `async_fire_time_changed` (the freeze window
is counted in scrape intervals), giving the simulator a few real milliseconds between ticks so
its counters move as they would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.spark_control.const import (
    CONF_DEEP_CHECK_INTERVAL,
    CONF_PROBE_TIMEOUT,
    CONF_VLLM_FREEZE_WINDOW,
    CONF_VLLM_LOG_WATCH,
    CONF_VLLM_PROBE_INTERVAL,
    CONF_VLLM_PROBE_TIMEOUT,
    CONF_VOICE_BRIDGES,
    DOMAIN,
    EVENT_RESTART_SUPPRESSED,
    EVENT_SERVICE_RECOVERED,
    EVENT_SERVICE_RESTARTED,
    EVENT_SWAP_FELL_BACK,
    EVENT_WEDGE_DETECTED,
)
from custom_components.spark_control.logbook import async_describe
from tests.integration.recovery.ha.conftest import ENTRY_ID
from tests.integration.recovery.ha.test_vllm_recovery import SERVED, _relaunches
from tests.sim import SimCluster

WINDOW = 10  # seconds of the freeze window in these tests
TICK = timedelta(seconds=2)  # the freeze watch's scrape interval


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """Only the freeze watch runs (the probe and the log watch have tests of their own)."""
    return {
        CONF_VOICE_BRIDGES: False,
        CONF_DEEP_CHECK_INTERVAL: 0,
        CONF_PROBE_TIMEOUT: 30,
        CONF_VLLM_PROBE_INTERVAL: 0,
        CONF_VLLM_FREEZE_WINDOW: WINDOW,
        CONF_VLLM_LOG_WATCH: False,
    }


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _tick(hass: HomeAssistant, ticks: int = 1) -> None:
    """Fire the watch's scrape timer `ticks` times, letting each scrape (and what it starts)
    finish; the simulator gets a few real milliseconds per tick to move its counters."""
    for _ in range(ticks):
        await asyncio.sleep(0.05)
        async_fire_time_changed(hass, dt_util.utcnow() + TICK)
        await hass.async_block_till_done(wait_background_tasks=True)


async def _start_stream(http: aiohttp.ClientSession, sim: SimCluster) -> aiohttp.ClientResponse:
    """A streamed chat that is generating (its first tokens read)."""
    payload = {
        "model": SERVED,
        "messages": [{"role": "user", "content": "tell me a long story"}],
        "max_tokens": 20000,
        "stream": True,
    }
    response = await http.post(f"{sim.vllm.url}/v1/chat/completions", json=payload)
    for _ in range(3):
        await response.content.readline()
    return response


def _power_reads(sim: SimCluster) -> int:
    return sum(command.startswith("nvidia-smi") for command in sim.nodes[0].commands)


def _logbook_line(hass: HomeAssistant, event: Event[dict[str, Any]]) -> str:
    return async_describe(hass, event.event_type, event.data)


async def test_frozen_generation_is_relaunched_then_the_budget_runs_out(
    hass: HomeAssistant,
    sim: SimCluster,
    loaded_entry: MockConfigEntry,
    http: aiohttp.ClientSession,
) -> None:
    detected = async_capture_events(hass, EVENT_WEDGE_DETECTED)
    restarted = async_capture_events(hass, EVENT_SERVICE_RESTARTED)
    recovered = async_capture_events(hass, EVENT_SERVICE_RECOVERED)
    suppressed = async_capture_events(hass, EVENT_RESTART_SUPPRESSED)
    before = _relaunches(sim)
    for attempt in (1, 2):
        stream = await _start_stream(http, sim)
        try:
            await _tick(hass, 2)  # generation moving: nothing happens
            assert not detected[attempt - 1 :]
            sim.faults.freeze_generation()
            # The window counts from the last scrape that saw the counters move: found at
            # most one scrape interval after it ends.
            await _tick(hass, WINDOW // 2 - 1)
            assert len(detected) == attempt - 1
            await _tick(hass, 2)
        finally:
            stream.close()
        assert len(detected) == attempt
        assert _relaunches(sim) == before + attempt
    wedge = detected[0]
    assert wedge.data["service"] == "vllm"
    assert wedge.data["source"] == "frozen_generation"
    # The simulated GB10 idles at 14 W: a frozen engine does no GPU work.
    assert wedge.data["error"] == (
        "generation frozen: no token generated or prefilled for 10 s with 1 running and "
        "0 waiting; GPU at 14 W"
    )
    assert restarted[0].data["budget_left"] == 1
    assert [event.data["service"] for event in recovered] == ["vllm", "vllm"]
    line = _logbook_line(hass, wedge)
    assert line == f"is wedged: {wedge.data['error']} (reported by the freeze watch)"
    assert _logbook_line(hass, recovered[0]).startswith("recovered after")
    assert sim.vllm.phase == "ready"  # the relaunched vLLM serves

    # A third freeze within the hour: not relaunched; the repair issue says why.
    stream = await _start_stream(http, sim)
    try:
        sim.faults.freeze_generation()
        await _tick(hass, WINDOW // 2 + 2)
    finally:
        stream.close()
    assert _relaunches(sim) == before + 2
    assert suppressed[0].data["service"] == "vllm"
    assert suppressed[0].data["limit"] == 2
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"restart_suppressed_{ENTRY_ID}_vllm")


async def test_slow_prefill_is_not_a_freeze(
    hass: HomeAssistant,
    sim: SimCluster,
    loaded_entry: MockConfigEntry,
    http: aiohttp.ClientSession,
) -> None:
    """Running requests, no token for longer than the window, but the GPU draws power: a long
    prefill, left alone; it then answers."""
    detected = async_capture_events(hass, EVENT_WEDGE_DETECTED)
    sim.faults.slow_prefill(8.0)  # longer than the ticks below take, even on a loaded machine
    payload = {"model": SERVED, "prompt": "a very long document " * 50, "max_tokens": 2}
    pending = asyncio.ensure_future(http.post(f"{sim.vllm.url}/v1/completions", json=payload))
    await sim.vllm.container.wait_until(lambda _: sim.vllm.active_requests == 1)  # prefilling
    power_reads = _power_reads(sim)
    await _tick(hass, 2 * WINDOW // 2)  # twice the window on the watch's clock
    assert sim.vllm.active_requests == 1  # still in its prefill
    assert _power_reads(sim) > power_reads  # the stall was seen, and the GPU asked
    response = await pending
    async with response:
        assert response.status == 200
    assert not detected
    assert _relaunches(sim) == 0


async def test_busy_batch_is_not_a_freeze(
    hass: HomeAssistant,
    sim: SimCluster,
    loaded_entry: MockConfigEntry,
    http: aiohttp.ClientSession,
) -> None:
    """More requests than the engine runs at once (running at its maximum, others waiting):
    tokens keep coming, so nothing is wrong however long it lasts."""
    detected = async_capture_events(hass, EVENT_WEDGE_DETECTED)
    streams = [await _start_stream(http, sim) for _ in range(sim.config.max_num_seqs)]
    payload = {"model": SERVED, "prompt": "queued", "max_tokens": 4}
    queued = [
        asyncio.ensure_future(http.post(f"{sim.vllm.url}/v1/completions", json=payload))
        for _ in range(4)
    ]
    try:
        await sim.vllm.container.wait_until(lambda _: sim.vllm.waiting_requests == len(queued))
        metrics = loaded_entry.runtime_data.client.api
        text = await metrics.vllm_metrics_text()
        waiting = next(
            line for line in text.splitlines() if line.startswith("vllm:num_requests_waiting")
        )
        assert waiting.endswith(f" {len(queued)}.0")
        await _tick(hass, 3 * WINDOW // 2)
        assert sim.vllm.active_requests == sim.config.max_num_seqs
    finally:
        for stream in streams:
            stream.close()
        for request in queued:
            (await request).close()
    assert not detected
    assert _relaunches(sim) == 0


async def test_no_freeze_watch_during_a_swap_or_a_failed_load(
    hass: HomeAssistant,
    sim: SimCluster,
    loaded_entry: MockConfigEntry,
    http: aiohttp.ClientSession,
) -> None:
    """While a swap loads (here one that runs out of memory and falls back), vLLM is down on
    purpose: the watch does not judge it, and the fallback's load is left alone too."""
    detected = async_capture_events(hass, EVENT_WEDGE_DETECTED)
    fell_back = async_capture_events(hass, EVENT_SWAP_FELL_BACK)
    stream = await _start_stream(http, sim)
    sim.faults.freeze_generation()  # frozen before the swap: the swap's stop clears it
    sim.faults.oom_on_load("google/gemma-4-27b-it")
    sim.faults.slow_start(0.5)
    swap = loaded_entry.runtime_data.swap
    swap.async_start("gemma4")
    try:
        while swap.running:
            await _tick(hass)
    finally:
        stream.close()
    await hass.async_block_till_done(wait_background_tasks=True)
    assert fell_back
    assert not detected
    await _tick(hass, WINDOW // 2 + 1)  # the fallback serves; nothing is running
    assert not detected


@pytest.mark.parametrize("exit_server", [False, True], ids=["api-alive", "server-exited"])
async def test_engine_death_in_the_log_relaunches_vllm(
    hass: HomeAssistant,
    sim: SimCluster,
    config_entry: MockConfigEntry,
    exit_server: bool,
) -> None:
    """The death lines are a wedge at once, whether the API server stays up (`/health` 503,
    which a probe would take for a load) or exits (its container runs on)."""
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry, options={**config_entry.options, CONF_VLLM_LOG_WATCH: True}
    )
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    recovered_now = asyncio.Event()
    follows_at_recovery: list[int] = []
    detected = async_capture_events(hass, EVENT_WEDGE_DETECTED)

    @callback
    def on_recovered(_event: Event[dict[str, Any]]) -> None:
        # The relaunch's own log follows all came before: a follow after this is the watch's.
        follows_at_recovery.append(sim.containers["vllm_node"].follows)
        recovered_now.set()

    hass.bus.async_listen(EVENT_SERVICE_RECOVERED, on_recovered)
    try:
        await _until_following(sim)
        sim.faults.kill_engine(exit_server=exit_server)
        async with asyncio.timeout(60):  # a relaunch and model load on a loaded machine
            await recovered_now.wait()
        assert detected[0].data["source"] == "container_log"
        assert detected[0].data["error"] == "engine died: EngineCore encountered a fatal error."
        assert _logbook_line(hass, detected[0]).endswith("(reported by vLLM's log)")
        assert _relaunches(sim) == 1
        assert sim.vllm.phase == "ready"
        # The relaunched vLLM is followed from its own start: a second death is found too.
        recovered_now.clear()
        await _until_following(sim, more_than=follows_at_recovery[-1])
        sim.faults.kill_engine(exit_server=exit_server)
        async with asyncio.timeout(60):
            await recovered_now.wait()
        assert _relaunches(sim) == 2
    finally:
        assert await hass.config_entries.async_unload(config_entry.entry_id)
        await hass.async_block_till_done()


async def _until_following(sim: SimCluster, more_than: int = 0) -> None:
    """Wait until a `docker logs -f` of vLLM beyond the first `more_than` has subscribed to the
    container's log (a follow sees only the lines logged after that)."""
    await sim.containers["vllm_node"].wait_followers(lambda c: c.follows > more_than)


async def test_cheap_probe_finds_a_dead_engine_behind_a_healthy_health(
    hass: HomeAssistant,
    sim: SimCluster,
    config_entry: MockConfigEntry,
) -> None:
    """The one-token probe on its own schedule: a failure is confirmed by the deep probe, then
    vLLM is relaunched; a healthy vLLM's probes change nothing."""
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry,
        options={
            **config_entry.options,
            CONF_VLLM_PROBE_INTERVAL: 30,
            CONF_VLLM_PROBE_TIMEOUT: 5,
            CONF_VLLM_FREEZE_WINDOW: 0,
        },
    )
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    detected = async_capture_events(hass, EVENT_WEDGE_DETECTED)
    recovered = async_capture_events(hass, EVENT_SERVICE_RECOVERED)
    try:
        completions = _completions(sim)
        async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=31))
        await hass.async_block_till_done(wait_background_tasks=True)
        assert _completions(sim) == completions + 1  # probed, healthy: nothing else
        assert not detected

        sim.faults.wedge("vllm")  # /health 200, completions 500
        async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=31))
        await hass.async_block_till_done(wait_background_tasks=True)
        assert detected[0].data["source"] == "vllm_probe"
        assert "completion answered 500" in detected[0].data["error"]
        assert _relaunches(sim) == 1
        assert recovered[0].data["service"] == "vllm"
    finally:
        assert await hass.config_entries.async_unload(config_entry.entry_id)
        await hass.async_block_till_done()


def _completions(sim: SimCluster) -> int:
    return sum('"POST /v1/completions HTTP/1.1"' in line for line in sim.vllm.container.log_lines)
