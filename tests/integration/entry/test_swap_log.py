"""The swap sensor shows the last lines of vLLM's load log while the model loads, not only
after a failure, and keeps them out of the recorder."""

from __future__ import annotations

from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers.event import async_track_state_change_event
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spark_control.const import DOMAIN
from custom_components.spark_control.sparklib.swap import LAST_LINES
from tests.sim import SimCluster

SWAP_SENSOR = "sensor.lab_vllm_swap_status"


async def test_load_log_lines_are_readable_while_loading(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    seen: list[tuple[str, list[str]]] = []

    @callback
    def record(event: Event[EventStateChangedData]) -> None:
        if (state := event.data["new_state"]) is not None:
            seen.append((state.state, list(state.attributes["log_lines"])))

    unsub = async_track_state_change_event(hass, SWAP_SENSOR, record)
    await hass.services.async_call(
        DOMAIN,
        "swap_model",
        {"cluster": loaded_entry.entry_id, "model": "gemma4", "wait": True},
        blocking=True,
    )
    unsub()
    loading = [lines for status, lines in seen if status == "loading"]
    assert loading
    # The tail grows line by line while loading: several lines visible before "ready".
    assert max(len(lines) for lines in loading) >= 3
    assert any("Loading weights took" in line for lines in loading for line in lines)
    final = seen[-1][1]
    assert seen[-1][0] == "ready"
    assert "Application startup complete." in final[-1]
    assert len(final) <= LAST_LINES
    entity = hass.data["entity_components"]["sensor"].get_entity(SWAP_SENSOR)
    assert "log_lines" in entity._unrecorded_attributes
