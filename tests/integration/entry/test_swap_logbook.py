"""A swap through the model select leaves its logbook lines on the select: on the entity's own
logbook and live on a logbook card that lists it (the dashboard's "Swaps" card), with the
models' display names."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Any

import pytest
from homeassistant.components.persistent_notification import (
    _async_get_or_create_notifications,
)
from homeassistant.components.recorder import Recorder
from homeassistant.components.select import ATTR_OPTION, SERVICE_SELECT_OPTION
from homeassistant.const import ATTR_ENTITY_ID, SERVICE_TURN_OFF, SERVICE_TURN_ON
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.spark_control.const import (
    DOMAIN,
    EVENT_SWAP_FINISHED,
    EVENT_SWAP_STARTED,
    EVENT_VLLM_STOPPED,
)
from custom_components.spark_control.logbook import async_describe
from tests.ha_entry import logbook_of
from tests.sim import SimCluster

SELECT = "select.lab_vllm_model"
SWAP_SENSOR = "sensor.lab_vllm_swap_status"
WEDGED = "binary_sensor.lab_vllm_wedged"
SWITCH = "switch.lab_vllm_running"
GEMMA = "Gemma 4 27B Instruct"
QWEN = "Qwen3.6 35B-A3B (NVFP4)"  # what the simulator serves
FINISHED_LINE = rf"now serves {GEMMA} \(swap took [\d.]+ s\)"


@pytest.fixture
def mock_recorder_before_hass(async_setup_recorder_instance: Any) -> None:
    """The recorder must be prepared before the `hass` fixture starts."""


async def test_swap_lines_are_filed_under_the_model_select(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    loaded_entry: MockConfigEntry,
) -> None:
    assert await async_setup_component(hass, "logbook", {})
    await hass.async_block_till_done()
    start = dt_util.utcnow()
    started = async_capture_events(hass, EVENT_SWAP_STARTED)
    finished = async_capture_events(hass, EVENT_SWAP_FINISHED)
    # What a logbook card listing the select receives live.
    stream = await hass_ws_client()
    await stream.send_json(
        {
            "id": 1,
            "type": "logbook/event_stream",
            "start_time": start.isoformat(),
            "entity_ids": [SELECT],
        }
    )
    assert (await stream.receive_json())["success"]

    await hass.services.async_call(
        "select", SERVICE_SELECT_OPTION, {ATTR_ENTITY_ID: SELECT, ATTR_OPTION: GEMMA}
    )
    async with asyncio.timeout(20):
        await hass.async_block_till_done(wait_background_tasks=True)

    # The events say which entity they are about (automations see it too), and that this
    # changed vLLM's model rather than starting it.
    assert started[0].data["entity_id"] == finished[0].data["entity_id"] == SELECT
    assert started[0].data["starting"] is finished[0].data["starting"] is False
    streamed: list[str] = []
    async with asyncio.timeout(30):  # the line must come: a deadline a loaded machine keeps
        while not any(re.fullmatch(FINISHED_LINE, line) for line in streamed):
            message = await stream.receive_json()
            streamed += [e["message"] for e in message["event"]["events"] if "message" in e]
    assert f"started loading {GEMMA}" in streamed

    # The select's own logbook, as its page asks for it: the two lines, under the select.
    entries = await logbook_of(hass, hass_ws_client, start, SELECT)
    ours = [entry for entry in entries if entry.get("domain") == DOMAIN]
    assert [entry["entity_id"] for entry in ours] == [SELECT, SELECT]
    assert ours[0]["message"] == f"started loading {GEMMA}"
    assert re.fullmatch(FINISHED_LINE, ours[1]["message"])
    assert {entry["name"] for entry in ours} == {"Lab vLLM"}
    # The swap sensor's phases are not the select's: they stay off its logbook.
    assert all(entry["entity_id"] != SWAP_SENSOR for entry in entries)


async def _logbook_with_vllm_stopped(hass: HomeAssistant) -> datetime:
    """Set the logbook up and switch vLLM off; the time from which to read its lines."""
    assert await async_setup_component(hass, "logbook", {})
    await hass.async_block_till_done()
    await hass.services.async_call(
        "switch", SERVICE_TURN_OFF, {ATTR_ENTITY_ID: SWITCH}, blocking=True
    )
    await hass.async_block_till_done()
    return dt_util.utcnow()


async def test_a_stop_of_vllm_is_told_as_a_stop_on_the_swaps_card(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    loaded_entry: MockConfigEntry,
) -> None:
    """Switching vLLM off leaves the select unknown (it serves nothing); the select's logbook
    (the Swaps card) says vLLM was stopped and what it served, so the card's line for the
    select's state is not left unexplained, and no swap line is written."""
    assert await async_setup_component(hass, "logbook", {})
    await hass.async_block_till_done()
    start = dt_util.utcnow()
    stopped = async_capture_events(hass, EVENT_VLLM_STOPPED)
    swapped = async_capture_events(hass, EVENT_SWAP_STARTED)

    await hass.services.async_call(
        "switch", SERVICE_TURN_OFF, {ATTR_ENTITY_ID: SWITCH}, blocking=True
    )
    await hass.async_block_till_done()

    assert hass.states.get(SELECT).state == "unknown"  # type: ignore[union-attr]
    assert [event.data["model"] for event in stopped] == ["qwen36"]
    assert stopped[0].data["entity_id"] == SELECT
    assert swapped == []
    ours = [
        entry
        for entry in await logbook_of(hass, hass_ws_client, start, SELECT)
        if entry.get("domain") == DOMAIN
    ]
    assert [(entry["name"], entry["message"]) for entry in ours] == [
        ("Lab vLLM", f"stopped (it served {QWEN})")
    ]
    assert ours[0]["entity_id"] == SELECT
    # Stopped before it served anything Home Assistant knew of: no model to name.
    assert async_describe(hass, EVENT_VLLM_STOPPED, {"cluster": "Lab", "model": None}) == "stopped"


async def test_a_start_of_vllm_is_told_as_a_start_not_a_swap(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    loaded_entry: MockConfigEntry,
) -> None:
    """Switching vLLM off and on again relaunches its model through the swap's launch; the
    events say `starting` and the select's logbook says vLLM starts with that model."""
    start = await _logbook_with_vllm_stopped(hass)
    started = async_capture_events(hass, EVENT_SWAP_STARTED)
    finished = async_capture_events(hass, EVENT_SWAP_FINISHED)

    await hass.services.async_call(
        "switch", SERVICE_TURN_ON, {ATTR_ENTITY_ID: SWITCH}, blocking=True
    )
    async with asyncio.timeout(20):
        await hass.async_block_till_done(wait_background_tasks=True)

    assert started[0].data["starting"] is finished[0].data["starting"] is True
    ours = [
        entry
        for entry in await logbook_of(hass, hass_ws_client, start, SELECT)
        if entry.get("domain") == DOMAIN
    ]
    assert [entry["name"] for entry in ours] == ["Lab vLLM", "Lab vLLM"]
    assert ours[0]["message"] == f"is starting with {QWEN}"
    assert re.fullmatch(rf"started with {re.escape(QWEN)} \(took [\d.]+ s\)", ours[1]["message"])


async def test_a_failed_start_of_vllm_is_told_as_a_start(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    loaded_entry: MockConfigEntry,
    sim: SimCluster,
) -> None:
    """A start whose load crashes: the logbook line and the notification say vLLM failed to
    start with the model (under the swap notification's one id), not that a swap failed."""
    start = await _logbook_with_vllm_stopped(hass)
    sim.faults.crash_on_load(True)

    await hass.services.async_call(
        "switch", SERVICE_TURN_ON, {ATTR_ENTITY_ID: SWITCH}, blocking=True
    )
    async with asyncio.timeout(20):
        await hass.async_block_till_done(wait_background_tasks=True)

    ours = [
        entry["message"]
        for entry in await logbook_of(hass, hass_ws_client, start, SELECT)
        if entry.get("domain") == DOMAIN
    ]
    assert ours[0] == f"is starting with {QWEN}"
    assert re.fullmatch(
        rf"failed to start with {re.escape(QWEN)} after [\d.]+ s: vLLM crashed: .+", ours[1]
    )
    notice = _async_get_or_create_notifications(hass)[
        f"{DOMAIN}_{loaded_entry.entry_id}_swap_failed"
    ]
    assert notice["title"] == "Spark Control: vLLM failed to start"
    assert notice["message"].startswith(f"vLLM on **Lab** failed to start with {QWEN}: ")


async def test_a_reload_leaves_no_line_on_the_dashboard_logbooks(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    loaded_entry: MockConfigEntry,
) -> None:
    """Reloading the entry (as an options change does) puts no "became unavailable" or
    "changed to …" line on the model select's logbook (the Swaps card) or a Wedged sensor's
    (the Wedges and restarts card): with none there, the dashboard keeps its empty-state
    notes. Both entities have their states again afterwards."""
    assert await async_setup_component(hass, "logbook", {})
    await hass.async_block_till_done()
    start = dt_util.utcnow()
    select_before = hass.states.get(SELECT)
    assert select_before is not None
    unloaded: list[str | None] = []  # the select's state while the entry is unloaded

    async def reload() -> None:
        assert await hass.config_entries.async_unload(loaded_entry.entry_id)
        await hass.async_block_till_done()
        unloaded.append(state.state if (state := hass.states.get(SELECT)) else None)
        assert await hass.config_entries.async_setup(loaded_entry.entry_id)
        await hass.async_block_till_done()

    await reload()
    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done()

    assert unloaded == ["unavailable"]  # what HA shows for an unloaded entry's entity
    select = hass.states.get(SELECT)
    assert select is not None
    assert select.state == select_before.state
    assert hass.states.get(WEDGED).state == "off"  # type: ignore[union-attr]
    assert await logbook_of(hass, hass_ws_client, start, SELECT) == []
    assert await logbook_of(hass, hass_ws_client, start, WEDGED) == []
