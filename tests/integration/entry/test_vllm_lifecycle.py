"""Starting, stopping and restarting vLLM from Home Assistant as spark-vllm-docker behaves: its
container runs `sleep infinity` (run `--rm`), vLLM is launched inside it, so every start and
restart is a relaunch of the model it served through the swap's launch, with the swap's
progress, under the swap's one claim."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.components.button import SERVICE_PRESS
from homeassistant.const import ATTR_ENTITY_ID, SERVICE_TURN_OFF, SERVICE_TURN_ON
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.spark_control.const import (
    CONF_VLLM_RELAUNCH_ON_EXIT,
    DOMAIN,
    EVENT_SWAP_FINISHED,
    EVENT_SWAP_STARTED,
    EVENT_VLLM_EXITED,
)
from tests.ha_entry import async_wait_until
from tests.integration.entry.test_swap import SELECT, SWAP_SENSOR, _record_states, _swap_done
from tests.sim import SimCluster

SWITCH = "switch.lab_vllm_running"
SERVED = "RedHatAI/Qwen3.6-35B-A3B-NVFP4"  # the simulator's model: catalog key qwen36
SERVED_NAME = "Qwen3.6 35B-A3B (NVFP4)"


def _launches(sim: SimCluster, repo_id: str = SERVED) -> int:
    return sum(f"exec vllm serve {repo_id}" in command for command in sim.nodes[0].commands)


def _state(hass: HomeAssistant, entity_id: str) -> str:
    state = hass.states.get(entity_id)
    assert state is not None
    return state.state


async def _stop_vllm(hass: HomeAssistant) -> None:
    await hass.services.async_call(
        "switch", SERVICE_TURN_OFF, {ATTR_ENTITY_ID: SWITCH}, blocking=True
    )
    await hass.async_block_till_done()


async def test_switch_stops_vllm_and_relaunches_its_model_with_progress(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """Off stops vLLM's container on every node (launch-cluster.sh stop; `--rm` removes it);
    on launches the model it served the way a swap does: the select shows that model and the
    swap sensor each phase while it loads, never a bare `docker start` of an empty container."""
    await _stop_vllm(hass)
    assert f"cd {sim.config.repo_path} && ./launch-cluster.sh stop" in sim.nodes[0].commands
    assert sim.containers["vllm_node"].removed
    assert _state(hass, SWITCH) == "off"
    assert _state(hass, SELECT) == "unknown"  # nothing is loaded while stopped

    started = async_capture_events(hass, EVENT_SWAP_STARTED)
    finished = async_capture_events(hass, EVENT_SWAP_FINISHED)
    shown, unsub_select = _record_states(hass, SELECT)
    phases, unsub_sensor = _record_states(hass, SWAP_SENSOR)
    switched, unsub_switch = _record_states(hass, SWITCH)
    sim.faults.slow_start(1.0)  # a load the entities can be seen in
    before = _launches(sim)
    await hass.services.async_call(
        "switch", SERVICE_TURN_ON, {ATTR_ENTITY_ID: SWITCH}, blocking=True
    )
    # Answered at once, the start claimed: the select shows what is being loaded.
    assert loaded_entry.runtime_data.swap.running
    await hass.async_block_till_done()
    assert _state(hass, SELECT) == SERVED_NAME
    assert _state(hass, SWITCH) == "on"  # being brought up (its old container is gone)
    await _swap_done(hass)
    unsub_select()
    unsub_sensor()
    unsub_switch()
    # On from the request to the end: the claim's end never showed the container list of
    # before the start (no container) as "off" until the metrics were read again.
    assert switched == ["on"]
    assert _launches(sim) == before + 1
    assert not any(command.startswith("docker start") for command in sim.nodes[0].commands)
    assert started[0].data["model"] == "qwen36"
    assert finished[0].data["model"] == "qwen36"
    assert {"starting", "loading", "ready"} <= set(phases)
    assert "unknown" not in shown  # the model being started showed throughout
    assert sim.vllm.phase == "ready"
    assert _state(hass, SWITCH) == "on"
    assert _state(hass, SELECT) == SERVED_NAME


async def test_a_second_start_during_a_start_is_refused_and_the_deep_check_says_starting(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """One claim for swaps and starts: a request meanwhile gets the translated
    `swap_in_progress`; `run_deep_check` reports vLLM as starting (translated, no probe, no
    failure) and still checks the other services."""
    await _stop_vllm(hass)
    sim.faults.slow_start(60)  # still loading when the requests below come, on any machine
    await hass.services.async_call(
        DOMAIN,
        "start_service",
        {"cluster": loaded_entry.entry_id, "service": "vllm"},
        blocking=True,
    )
    recovery = loaded_entry.runtime_data.recovery
    probes = recovery.manager.probes_started
    for action, data in (
        ("start_service", {"service": "vllm"}),
        ("restart_service", {"service": "vllm"}),
        ("stop_service", {"service": "vllm"}),
        ("swap_model", {"model": "gemma4"}),
    ):
        with pytest.raises(HomeAssistantError) as refused:
            await hass.services.async_call(
                DOMAIN, action, {"cluster": loaded_entry.entry_id, **data}, blocking=True
            )
        assert refused.value.translation_key == "swap_in_progress"
        assert refused.value.translation_placeholders == {"model": SERVED_NAME}
    await async_wait_until(hass, lambda: _state(hass, SWAP_SENSOR) == "loading")
    answer: Any = await hass.services.async_call(
        DOMAIN,
        "run_deep_check",
        {"cluster": loaded_entry.entry_id},
        blocking=True,
        return_response=True,
    )
    vllm = answer["services"]["vllm"]
    assert vllm["health"] == "starting"
    assert vllm["model"] == "qwen36"
    assert vllm["swap_status"] == "loading"
    assert vllm["detail"].startswith(f"Not checked: vLLM is starting with {SERVED_NAME} (loading, ")
    assert vllm["restarts"] == 0
    assert list(answer["services"]) == ["vllm", "parakeet", "magpie"]
    assert answer["services"]["parakeet"]["health"] == "healthy"
    assert recovery.manager.probes_started == probes + 2  # the speech services only
    assert recovery.state("vllm").last_result is None  # nothing recorded against vLLM
    assert _launches(sim) == 1
    # Unloading the entry cancels the start; nothing of it outlives the test.
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    await hass.async_block_till_done()


async def test_deep_check_during_a_swap_says_swapping(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    sim.faults.slow_start(60)
    await hass.services.async_call(
        DOMAIN,
        "swap_model",
        {"cluster": loaded_entry.entry_id, "model": "gemma4", "wait": False},
        blocking=True,
    )
    await async_wait_until(hass, lambda: _state(hass, SWAP_SENSOR) == "loading")
    answer: Any = await hass.services.async_call(
        DOMAIN,
        "run_deep_check",
        {"cluster": loaded_entry.entry_id, "service": ["vllm"]},
        blocking=True,
        return_response=True,
    )
    vllm = answer["services"]["vllm"]
    assert vllm["health"] == "swapping"
    assert vllm["detail"].startswith(
        "Not checked: vLLM is being swapped to Gemma 4 27B Instruct (loading, "
    )
    assert list(answer["services"]) == ["vllm"]
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    await hass.async_block_till_done()


async def test_restart_button_relaunches_and_start_leaves_a_serving_vllm_alone(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    await hass.services.async_call(
        DOMAIN,
        "start_service",
        {"cluster": loaded_entry.entry_id, "service": "vllm"},
        blocking=True,
    )
    assert not loaded_entry.runtime_data.swap.running
    assert _launches(sim) == 0  # it serves: nothing to start
    sim.faults.hang("vllm")  # holds its port, answers nothing (as a real vLLM while loading)
    await hass.services.async_call(
        DOMAIN,
        "start_service",
        {"cluster": loaded_entry.entry_id, "service": "vllm"},
        blocking=True,
    )
    assert _launches(sim) == 0  # a server is there: a start does not replace it
    await sim.faults.clear()

    finished = async_capture_events(hass, EVENT_SWAP_FINISHED)
    await hass.services.async_call(
        "button", SERVICE_PRESS, {ATTR_ENTITY_ID: "button.lab_vllm_restart"}, blocking=True
    )
    await _swap_done(hass)
    assert finished[0].data["model"] == "qwen36"
    assert _launches(sim) == 1
    assert not any("docker restart vllm_node" in command for command in sim.nodes[0].commands)
    assert sim.vllm.phase == "ready"


async def test_a_start_with_no_model_known_asks_for_one(
    hass: HomeAssistant, config_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """Home Assistant has never seen vLLM serve (stopped before setup, nothing restored): the
    start names no model of its own choosing and says how to start one."""
    await sim.world.docker.stop(sim.world.vllm.container)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    try:
        with pytest.raises(HomeAssistantError) as refused:
            await hass.services.async_call(
                "switch", SERVICE_TURN_ON, {ATTR_ENTITY_ID: SWITCH}, blocking=True
            )
        assert refused.value.translation_key == "vllm_model_unknown"
        assert "Choose a model in the model select" in str(refused.value)
        assert _launches(sim) == 0
        assert not config_entry.runtime_data.swap.running
    finally:
        assert await hass.config_entries.async_unload(config_entry.entry_id)
        await hass.async_block_till_done()


async def test_a_container_left_without_vllm_reads_stopped_and_starts_again(
    hass: HomeAssistant, config_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """`docker restart vllm_node` by hand on the node: the container runs `sleep infinity`
    again, nothing serves. Seen from Home Assistant that is vLLM exiting on its own while
    serving (the exit watch, tests/integration/recovery/ha/test_vllm_exit.py); with its
    relaunch turned off, the switch says vLLM is not running (not just the container), and
    turning it on relaunches the model it served."""
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry, options={**config_entry.options, CONF_VLLM_RELAUNCH_ON_EXIT: False}
    )
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    exited = async_capture_events(hass, EVENT_VLLM_EXITED)
    try:
        await sim.world.docker.restart(sim.world.vllm.container)
        runtime = config_entry.runtime_data
        await runtime.metrics.async_refresh_containers()
        await runtime.status.async_refresh()
        await hass.async_block_till_done(wait_background_tasks=True)
        assert sim.containers["vllm_node"].running
        assert _state(hass, SWITCH) == "off"
        assert _state(hass, "binary_sensor.lab_vllm_connectivity") == "off"
        assert [event.data["relaunch"] for event in exited] == [False]

        finished = async_capture_events(hass, EVENT_SWAP_FINISHED)
        await hass.services.async_call(
            "switch", SERVICE_TURN_ON, {ATTR_ENTITY_ID: SWITCH}, blocking=True
        )
        await _swap_done(hass)
        assert finished[0].data["model"] == "qwen36"
        assert _launches(sim) == 1
        assert _state(hass, SWITCH) == "on"
        assert sim.vllm.phase == "ready"
    finally:
        assert await hass.config_entries.async_unload(config_entry.entry_id)
        await hass.async_block_till_done()
