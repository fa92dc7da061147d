"""vLLM's server exiting on its own while serving, in a real Home Assistant against the
simulator over SSH: the simulator's server process is killed (no line in its log, its port
closed, its container on `sleep infinity`, as the kernel's OOM killer leaves it). Home Assistant
fires `spark_control_vllm_exited` and relaunches the model served, within vLLM's restart budget;
a stop asked for, a port refused while the server runs, and the option turned off never
relaunch."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.const import ATTR_ENTITY_ID, SERVICE_TURN_OFF
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.spark_control.const import (
    CONF_DEEP_CHECK_INTERVAL,
    CONF_PROBE_TIMEOUT,
    CONF_VLLM_RELAUNCH_ON_EXIT,
    CONF_VOICE_BRIDGES,
    DOMAIN,
    EVENT_RESTART_SUPPRESSED,
    EVENT_SERVICE_RECOVERED,
    EVENT_SERVICE_RESTARTED,
    EVENT_SWAP_FAILED,
    EVENT_VLLM_EXITED,
    EVENT_WEDGE_DETECTED,
)
from custom_components.spark_control.logbook import async_describe
from tests.integration.recovery.ha.conftest import ENTRY_ID
from tests.integration.recovery.ha.test_vllm_recovery import _relaunches
from tests.sim import SimCluster

SWITCH = "switch.lab_vllm_running"


def _logbook_line(hass: HomeAssistant, event: Event[dict[str, Any]]) -> str:
    return async_describe(hass, event.event_type, event.data)


def _looks(sim: SimCluster) -> int:
    """`docker top` of vLLM's container: the watch asked the node whether vLLM still runs."""
    return sum(command == "docker top vllm_node" for command in sim.nodes[0].commands)


async def _poll(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """One fast health poll, and whatever it starts, to the end."""
    await entry.runtime_data.status.async_refresh()
    await hass.async_block_till_done(wait_background_tasks=True)


async def _kill_while_serving(hass: HomeAssistant, sim: SimCluster, entry: MockConfigEntry) -> None:
    await _poll(hass, entry)  # seen serving
    assert sim.vllm.phase == "ready"
    await sim.faults.kill_server()
    await _poll(hass, entry)  # seen gone


async def test_an_exit_while_serving_is_relaunched_until_the_budget_is_spent(
    hass: HomeAssistant, sim: SimCluster, loaded_entry: MockConfigEntry
) -> None:
    exited = async_capture_events(hass, EVENT_VLLM_EXITED)
    detected = async_capture_events(hass, EVENT_WEDGE_DETECTED)
    restarted = async_capture_events(hass, EVENT_SERVICE_RESTARTED)
    recovered = async_capture_events(hass, EVENT_SERVICE_RECOVERED)
    suppressed = async_capture_events(hass, EVENT_RESTART_SUPPRESSED)
    for attempt in (1, 2):
        await _kill_while_serving(hass, sim, loaded_entry)
        assert len(exited) == attempt
        assert _relaunches(sim) == attempt
        assert sim.vllm.phase == "ready"  # serving again
        assert restarted[-1].data["budget_left"] == 2 - attempt
        assert len(recovered) == attempt
    assert exited[0].data == {
        "entry_id": ENTRY_ID,
        "cluster": "Lab",
        "service": "vllm",
        "model": "qwen36",
        "relaunch": True,
        "entity_id": "binary_sensor.lab_vllm_wedged",
    }
    assert _logbook_line(hass, exited[0]) == (
        "exited on its own while serving Qwen3.6 35B-A3B (NVFP4) (the node may have run out "
        "of memory); relaunching it"
    )
    assert detected[0].data["source"] == "server_exited"
    assert _logbook_line(hass, detected[0]).endswith("(reported by the exit watch)")
    await _poll(hass, loaded_entry)
    state = hass.states.get(SWITCH)
    assert state is not None
    assert state.state == "on"

    # A third exit within vLLM's hour: announced, not relaunched; the repair issue says why.
    await _kill_while_serving(hass, sim, loaded_entry)
    assert len(exited) == 3
    assert _relaunches(sim) == 2
    assert sim.vllm.phase == "stopped"
    assert suppressed[0].data["service"] == "vllm"
    assert suppressed[0].data["limit"] == 2
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"restart_suppressed_{ENTRY_ID}_vllm")


async def test_a_stop_or_a_refused_port_is_no_exit(
    hass: HomeAssistant, sim: SimCluster, loaded_entry: MockConfigEntry
) -> None:
    """A port refused while the server process runs (`faults.refuse`) is looked at on the
    node and left alone; a stop through the switch is not even looked at."""
    exited = async_capture_events(hass, EVENT_VLLM_EXITED)
    await _poll(hass, loaded_entry)
    await sim.faults.refuse("vllm")
    await _poll(hass, loaded_entry)
    assert _looks(sim) == 1  # the server still runs: no exit
    await sim.faults.clear()
    await _poll(hass, loaded_entry)  # serving again

    await hass.services.async_call(
        "switch", SERVICE_TURN_OFF, {ATTR_ENTITY_ID: SWITCH}, blocking=True
    )
    await _poll(hass, loaded_entry)
    assert sim.containers["vllm_node"].removed
    assert _looks(sim) == 1
    assert not exited
    assert _relaunches(sim) == 0
    state = hass.states.get(SWITCH)
    assert state is not None
    assert state.state == "off"


async def test_no_exit_is_seen_during_a_swap(
    hass: HomeAssistant, sim: SimCluster, loaded_entry: MockConfigEntry
) -> None:
    """A swap stops vLLM on purpose, and a load killed under it is the swap's failure."""
    exited = async_capture_events(hass, EVENT_VLLM_EXITED)
    failed = async_capture_events(hass, EVENT_SWAP_FAILED)
    await _poll(hass, loaded_entry)
    sim.faults.kill_on_load("google/gemma-4-27b-it")
    sim.faults.slow_start(2)  # the swap sees the port answer (503) before the kill
    await hass.services.async_call(
        DOMAIN, "swap_model", {"cluster": ENTRY_ID, "model": "gemma4"}, blocking=True
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    await _poll(hass, loaded_entry)
    assert failed[0].data["cause"] == "server_exited"
    assert not exited
    assert _looks(sim) == 0


@pytest.mark.parametrize(
    "entry_options",
    [
        {
            CONF_VOICE_BRIDGES: False,
            CONF_DEEP_CHECK_INTERVAL: 0,
            CONF_PROBE_TIMEOUT: 30,
            CONF_VLLM_RELAUNCH_ON_EXIT: False,
        }
    ],
)
async def test_with_relaunch_off_an_exit_is_only_announced(
    hass: HomeAssistant, sim: SimCluster, loaded_entry: MockConfigEntry
) -> None:
    exited = async_capture_events(hass, EVENT_VLLM_EXITED)
    detected = async_capture_events(hass, EVENT_WEDGE_DETECTED)
    await _kill_while_serving(hass, sim, loaded_entry)
    assert len(exited) == 1
    assert exited[0].data["relaunch"] is False
    assert _logbook_line(hass, exited[0]).endswith(
        "not relaunched, as automatic relaunch is off in the options"
    )
    assert not detected
    assert _relaunches(sim) == 0
    assert sim.vllm.phase == "stopped"
