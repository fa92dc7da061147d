"""vLLM recovery in a real Home Assistant against the simulator: an engine that answers /health
but fails completions is detected by the one-token probe, relaunched with the model it served
through launch-cluster.sh, within vLLM's own budget (2 per hour by default); never while a
swap runs."""

from __future__ import annotations

import asyncio

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.spark_control.const import (
    CONF_DEEP_CHECK_INTERVAL,
    CONF_PROBE_TIMEOUT,
    CONF_VOICE_BRIDGES,
    DOMAIN,
    EVENT_RESTART_FAILED,
    EVENT_RESTART_SUPPRESSED,
    EVENT_SERVICE_RECOVERED,
    EVENT_SERVICE_RESTARTED,
    EVENT_SWAP_FINISHED,
    EVENT_WEDGE_DETECTED,
    EVENT_WEDGE_REPORT,
)
from tests.ha_entry import async_wait_until
from tests.integration.recovery.ha.conftest import ENTRY_ID
from tests.sim import SimCluster

SERVED = "RedHatAI/Qwen3.6-35B-A3B-NVFP4"


def _relaunches(sim: SimCluster) -> int:
    return sum(f"exec vllm serve {SERVED}" in command for command in sim.nodes[0].commands)


async def _report_vllm(hass: HomeAssistant) -> None:
    hass.bus.async_fire(
        EVENT_WEDGE_REPORT, {"service": "vllm", "error": "HTTP 500", "source": "gateway"}
    )
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_dead_engine_is_relaunched_with_its_model_then_budget_spent(
    hass: HomeAssistant, sim: SimCluster, loaded_entry: MockConfigEntry
) -> None:
    detected = async_capture_events(hass, EVENT_WEDGE_DETECTED)
    restarted = async_capture_events(hass, EVENT_SERVICE_RESTARTED)
    recovered = async_capture_events(hass, EVENT_SERVICE_RECOVERED)
    suppressed = async_capture_events(hass, EVENT_RESTART_SUPPRESSED)
    before = _relaunches(sim)
    for attempt in (1, 2):
        sim.faults.wedge("vllm")  # /health 200, completions fail
        await _report_vllm(hass)
        assert _relaunches(sim) == before + attempt
        assert restarted[-1].data["service"] == "vllm"
        assert restarted[-1].data["budget_left"] == 2 - attempt
    assert len(detected) == len(recovered) == 2
    assert not any("docker restart vllm_node" in c for c in sim.nodes[0].commands)
    assert any(c.endswith("./launch-cluster.sh stop") for c in sim.nodes[0].commands)

    # The third wedge within the hour is not restarted: event, repair issue.
    sim.faults.wedge("vllm")
    await _report_vllm(hass)
    assert _relaunches(sim) == before + 2
    assert suppressed[0].data["service"] == "vllm"
    assert suppressed[0].data["limit"] == 2
    assert suppressed[0].data["window_minutes"] == 60
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"restart_suppressed_{ENTRY_ID}_vllm")
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["limit"] == "2"

    # vLLM's device shows it like the speech services': wedged now, three wedges, its own
    # budget spent; the events name its Wedged sensor (their logbook lines land there).
    wedged = hass.states.get("binary_sensor.lab_vllm_wedged")
    assert wedged is not None
    assert wedged.state == "on"
    assert wedged.attributes["restart_suppressed"] is True
    assert hass.states.get("sensor.lab_vllm_wedges").state == "3"  # type: ignore[union-attr]
    restarts = hass.states.get("sensor.lab_vllm_automatic_restarts_in_window")
    assert restarts is not None
    assert restarts.state == "2"
    assert restarts.attributes["limit"] == 2
    assert restarts.attributes["window_minutes"] == 60
    assert {event.data["entity_id"] for event in detected + suppressed} == {
        "binary_sensor.lab_vllm_wedged"
    }


async def test_no_vllm_check_during_a_swap(
    hass: HomeAssistant, sim: SimCluster, loaded_entry: MockConfigEntry
) -> None:
    """A wedge report for vLLM while a swap loads is ignored: no probe, no restart."""
    finished = async_capture_events(hass, EVENT_SWAP_FINISHED)
    detected = async_capture_events(hass, EVENT_WEDGE_DETECTED)
    sim.faults.slow_start(1.0)
    await hass.services.async_call(
        DOMAIN, "swap_model", {"cluster": ENTRY_ID, "model": "gemma4"}, blocking=True
    )
    await async_wait_until(
        hass,
        lambda: hass.states.get("sensor.lab_vllm_swap_status").state == "loading",  # type: ignore[union-attr]
    )
    probes_before = loaded_entry.runtime_data.recovery.manager.probes_started
    hass.bus.async_fire(
        EVENT_WEDGE_REPORT, {"service": "vllm", "error": "HTTP 500", "source": "gateway"}
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    assert finished  # the swap ran to the end undisturbed
    assert not detected
    assert loaded_entry.runtime_data.recovery.manager.probes_started == probes_before


async def test_a_vllm_polled_down_is_relaunched_with_the_model_it_served_last(
    hass: HomeAssistant, sim: SimCluster, loaded_entry: MockConfigEntry
) -> None:
    """The last poll found vLLM unreachable (it served nothing then), and no swap ran since Home
    Assistant started: the relaunch still loads the model served before, through the swap claim
    the add-on gateway's starts take too, not a bare `docker restart` outside it."""
    status = loaded_entry.runtime_data.status
    await sim.faults.refuse("vllm")
    await status.async_refresh()
    assert status.data.vllm is None
    await sim.faults.clear()
    sim.faults.wedge("vllm")  # back, but its completions fail
    before = _relaunches(sim)
    await _report_vllm(hass)
    assert _relaunches(sim) == before + 1
    assert not any("docker restart vllm_node" in c for c in sim.nodes[0].commands)


@pytest.mark.parametrize(
    "entry_options",
    [{CONF_VOICE_BRIDGES: False, CONF_DEEP_CHECK_INTERVAL: 0, CONF_PROBE_TIMEOUT: 1}],
)
async def test_a_check_that_finds_vllm_being_started_waits_for_that_start(
    hass: HomeAssistant, sim: SimCluster, loaded_entry: MockConfigEntry
) -> None:
    """While recovery probes a frozen vLLM, the add-on gateway's start on request takes the swap
    claim (`swap_model` with the model served last). The check waits for that start and counts
    it as the recovery: no relaunch of its own, no budget spent, no `restart_failed`."""
    failed = async_capture_events(hass, EVENT_RESTART_FAILED)
    restarted = async_capture_events(hass, EVENT_SERVICE_RESTARTED)
    recovered = async_capture_events(hass, EVENT_SERVICE_RECOVERED)
    finished = async_capture_events(hass, EVENT_SWAP_FINISHED)
    recovery = loaded_entry.runtime_data.recovery
    sim.faults.freeze_generation()  # /health 200, the probe's one token never comes
    sim.faults.slow_start(3.0)  # the start outlasts the 1 s probe
    before = _relaunches(sim)
    hass.bus.async_fire(
        EVENT_WEDGE_REPORT, {"service": "vllm", "error": "HTTP 500", "source": "gateway"}
    )
    await asyncio.sleep(0)
    assert recovery.manager.checking("vllm")  # the probe is under way
    # What the gateway's start does, while that probe waits.
    await hass.services.async_call(
        DOMAIN, "swap_model", {"cluster": ENTRY_ID, "model": "qwen36"}, blocking=False
    )
    await async_wait_until(hass, lambda: loaded_entry.runtime_data.swap.running)
    await recovery.manager.check_finished("vllm")
    await hass.async_block_till_done(wait_background_tasks=True)
    assert finished  # the gateway's start loaded vLLM undisturbed
    assert not failed, [event.data for event in failed]
    assert not restarted
    assert len(recovered) == 1
    assert recovered[0].data["restarts"] == 0
    assert _relaunches(sim) == before + 1  # the start only
    assert recovery.restarts_in_window("vllm") == 0


async def test_a_wedged_vllm_serving_no_catalog_model_is_not_restarted_empty(
    hass: HomeAssistant, sim: SimCluster, config_entry: MockConfigEntry
) -> None:
    """vLLM serves a model started by hand that is not in the catalog: recovery cannot
    relaunch it (its flags are unknown) and a `docker restart` would leave spark-vllm-docker's
    container without vLLM, so the restart fails with a message saying what to do."""
    await sim.serve_model("someone/hand-started-model")
    await sim.vllm.wait_ready()
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    failed = async_capture_events(hass, EVENT_RESTART_FAILED)
    try:
        commands = len(sim.nodes[0].commands)
        sim.faults.wedge("vllm")
        await _report_vllm(hass)
        assert failed[0].data["service"] == "vllm"
        assert "Choose a model in the model select" in failed[0].data["error"]
        assert not any(
            "docker restart" in command or "launch-cluster.sh" in command
            for command in sim.nodes[0].commands[commands:]
        )
        assert sim.vllm.model == "someone/hand-started-model"
    finally:
        assert await hass.config_entries.async_unload(config_entry.entry_id)
        await hass.async_block_till_done()
