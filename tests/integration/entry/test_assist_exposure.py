"""Assist must not be able to stop or restart a GPU service with its default exposure."""

from __future__ import annotations

from homeassistant.components.homeassistant.exposed_entities import async_should_expose
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spark_control.const import SERVICES

# Every platform whose entities act on a service: start/stop, restart, swap (stop + load).
ACTING_DOMAINS = ("switch", "button", "select")


async def test_service_actions_not_exposed_to_assist(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """HA's own default-exposure rules (by domain, device class and entity category) keep
    every acting entity away from the conversation agent, while the entities stay enabled
    and visible for dashboards."""
    assert await async_setup_component(hass, "homeassistant", {})
    registry = er.async_get(hass)
    acting = [
        item
        for item in er.async_entries_for_config_entry(registry, loaded_entry.entry_id)
        if item.domain in ACTING_DOMAINS
    ]
    # A running switch and a restart button per service, the model select, and the button
    # that cancels a model download.
    assert sum(item.domain == "switch" for item in acting) == len(SERVICES)
    assert sum(item.unique_id.endswith("_restart") for item in acting) == len(SERVICES)
    assert any(item.unique_id.endswith("_cancel_download") for item in acting)
    assert any(item.domain == "select" for item in acting)
    for item in acting:
        assert item.disabled_by is None, item.entity_id
        assert item.hidden_by is None, item.entity_id
        assert hass.states.get(item.entity_id) is not None, item.entity_id
        assert not async_should_expose(hass, "conversation", item.entity_id), item.entity_id


async def test_exposure_rule_would_expose_a_plain_switch(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """The check above is not vacuous: with the category removed, HA exposes a running
    switch by default (the switch domain is exposed by default)."""
    assert await async_setup_component(hass, "homeassistant", {})
    registry = er.async_get(hass)
    switch = next(
        item
        for item in er.async_entries_for_config_entry(registry, loaded_entry.entry_id)
        if item.domain == "switch"
    )
    registry.async_update_entity(switch.entity_id, entity_category=None)
    assert async_should_expose(hass, "conversation", switch.entity_id)
