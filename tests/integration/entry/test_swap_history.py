"""The swap's expected duration: the previous load time of the same model, kept across
restarts of Home Assistant."""

from __future__ import annotations

from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers.event import async_track_state_change_event
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spark_control.const import DOMAIN

SWAP_SENSOR = "sensor.lab_vllm_swap_status"


async def _swap(hass: HomeAssistant, entry: MockConfigEntry, model: str) -> float:
    response = await hass.services.async_call(
        DOMAIN,
        "swap_model",
        {"cluster": entry.entry_id, "model": model, "wait": True},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    return float(response["duration"])  # type: ignore[arg-type]


async def test_expected_load_time_is_the_previous_load(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """While a model loads, the swap sensor expects its previous load time: none on its first
    load, the first's duration on the next, also after the entry reloaded (HA's storage)."""
    seen: list[tuple[str, object]] = []

    @callback
    def record(event: Event[EventStateChangedData]) -> None:
        state = event.data["new_state"]
        if state is not None and state.state in ("starting", "loading"):
            seen.append((state.attributes["target_model"], state.attributes["expected_seconds"]))

    unsub = async_track_state_change_event(hass, SWAP_SENSOR, record)
    await _swap(hass, loaded_entry, "gemma4")
    first = await _swap(hass, loaded_entry, "qwen3-vl")
    assert {expected for _, expected in seen} == {None}  # neither loaded here before
    seen.clear()

    await hass.async_block_till_done()  # the durations are written
    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    await _swap(hass, loaded_entry, "qwen3-vl")
    unsub()
    assert seen
    assert set(seen) == {("qwen3-vl", round(first, 1))}
    # Once finished there is nothing left to expect.
    state = hass.states.get(SWAP_SENSOR)
    assert state is not None
    assert state.state == "ready"
    assert state.attributes["expected_seconds"] is None
