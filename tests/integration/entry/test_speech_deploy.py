"""The Parakeet speech container from Home Assistant: update entity (installed label vs shipped
context), deploy over SFTP + docker build/run with the memory cap and no swap, health wait,
events, a failed build, removal — against the simulator over real SSH."""

from __future__ import annotations

import pytest
from homeassistant.components.update import DOMAIN as UPDATE_DOMAIN, SERVICE_INSTALL
from homeassistant.const import ATTR_ENTITY_ID, MATCH_ALL
from homeassistant.core import Event, HomeAssistant, State, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spark_control import speech_deploy
from custom_components.spark_control.const import DOMAIN
from custom_components.spark_control.sparklib.speech_container import (
    CONTEXT_LABEL,
    load_build_context,
)
from tests.sim import SimCluster


def _entity_id(hass: HomeAssistant, entry: MockConfigEntry) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(
        "update", DOMAIN, f"{entry.unique_id}_speech_container_update"
    )
    assert entity_id is not None
    return entity_id


def _state(hass: HomeAssistant, entity_id: str) -> State:
    state = hass.states.get(entity_id)
    assert state is not None
    return state


def _events(hass: HomeAssistant) -> list[Event]:
    seen: list[Event] = []

    @callback
    def record(event: Event) -> None:
        if event.event_type.startswith(f"{DOMAIN}_speech_container_"):
            seen.append(event)

    hass.bus.async_listen(MATCH_ALL, record)
    return seen


async def test_deploy_from_the_update_entity(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    context = load_build_context()
    update = _entity_id(hass, loaded_entry)
    state = _state(hass, update)
    # The simulator's container was started by hand (no label): an update is offered, the
    # unknown version said in words (HA shows versions as they are) and Install explained.
    assert state.state == "on"
    assert state.attributes["installed_version"] == "Built by hand"
    assert state.attributes["container"] == "built_by_hand"
    assert state.attributes["release_summary"].startswith(
        "The running speech container was not deployed by Spark Control"
    )
    assert state.attributes["latest_version"] == context.digest
    events = _events(hass)
    percentages: list[int] = []

    @callback
    def record(event: Event) -> None:
        if event.data["entity_id"] == update and event.data["new_state"].attributes.get(
            "in_progress"
        ):
            percentages.append(event.data["new_state"].attributes["update_percentage"])

    hass.bus.async_listen("state_changed", record)
    await hass.services.async_call(
        UPDATE_DOMAIN, SERVICE_INSTALL, {ATTR_ENTITY_ID: update}, blocking=True
    )
    await hass.async_block_till_done()

    state = _state(hass, update)
    assert state.state == "off"
    assert state.attributes["installed_version"] == context.digest
    assert state.attributes["container"] == "deployed"
    assert state.attributes["release_summary"] is None
    assert state.attributes["log_tail"][-1] == "Healthy"
    assert percentages == sorted(percentages)
    assert percentages[-1] == 90  # waiting for /health
    container = sim.containers["parakeet-asr"]
    assert container.labels == {CONTEXT_LABEL: context.digest}
    assert container.running
    inspect = sim.nodes[1].commands
    assert any(command.startswith("docker build -t spark-control/parakeet:") for command in inspect)
    run = next(command for command in inspect if command.startswith("docker run -d"))
    assert "--memory 40g --memory-swap 40g" in run
    assert (sim.world.homes[1] / context.remote_dir / "docker-run.args").is_file()
    assert [event.event_type for event in events] == [
        f"{DOMAIN}_speech_container_deploy_started",
        f"{DOMAIN}_speech_container_deploy_finished",
    ]
    assert events[0].data["installed"] == ""
    assert events[0].data["version"] == context.digest
    assert hass.states.get("binary_sensor.lab_parakeet_asr_connectivity") is not None

    await hass.services.async_call(
        DOMAIN, "remove_speech_container", {"cluster": loaded_entry.entry_id}, blocking=True
    )
    await hass.async_block_till_done()
    assert container.removed
    # Nothing installed: Install is on offer again, to deploy it anew.
    state = _state(hass, update)
    assert (state.state, state.attributes["container"]) == ("on", "missing")
    assert state.attributes["installed_version"] == "Not installed"
    assert state.attributes["release_summary"].startswith("No speech container is installed")
    assert events[-1].event_type == f"{DOMAIN}_speech_container_removed"
    assert _state(hass, "switch.lab_parakeet_asr_running").state == "off"


async def test_failed_build_reports_and_keeps_the_old_container(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    update = _entity_id(hass, loaded_entry)
    events = _events(hass)
    sim.faults.fail_docker_builds()
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            UPDATE_DOMAIN, SERVICE_INSTALL, {ATTR_ENTITY_ID: update}, blocking=True
        )
    assert err.value.translation_key == "command_failed"
    state = _state(hass, update)
    assert state.attributes["in_progress"] is False
    assert state.attributes["installed_version"] == "Built by hand"
    assert "did not complete successfully" in state.attributes["log_tail"][-1]
    assert events[-1].event_type == f"{DOMAIN}_speech_container_deploy_failed"
    assert events[-1].data["last_lines"][-1].startswith("ERROR: failed to solve")
    assert sim.containers["parakeet-asr"].running  # the old one still serves
    assert not any(command.startswith("docker rm") for command in sim.nodes[1].commands)


async def test_a_container_that_never_gets_healthy_is_a_translated_error(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    sim: SimCluster,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The new container runs but Parakeet never answers its health check: the deploy fails
    with a sentence of the translations naming the wait, not an "Unexpected error"."""
    monkeypatch.setattr(speech_deploy, "HEALTH_TIMEOUT", 2)  # told as 1 minute
    update = _entity_id(hass, loaded_entry)
    events = _events(hass)
    await sim.faults.refuse("parakeet")
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            UPDATE_DOMAIN, SERVICE_INSTALL, {ATTR_ENTITY_ID: update}, blocking=True
        )
    assert err.value.translation_key == "not_healthy_in_time"
    assert str(err.value).startswith("Parakeet did not become healthy within 1 minutes.")
    assert events[-1].event_type == f"{DOMAIN}_speech_container_deploy_failed"
