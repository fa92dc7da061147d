"""Entities that show recovery state: wedged flag, wedge count, restarts in the window.

They live on each service's device and follow `SparkRecovery` through a dispatcher
signal. The platforms (`binary_sensor.py`, `sensor.py`) add them with the two builders below.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.binary_sensor import BinarySensorDeviceClass, BinarySensorEntity
from homeassistant.components.sensor import SensorEntity, SensorStateClass
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity

from .const import DOMAIN, SERVICES, SPEECH_SERVICES
from .coordinator import SparkControlConfigEntry
from .entity import service_device
from .recovery import SparkRecovery, recovery_signal


class SparkRecoveryEntity(Entity):
    """Base: one recovery value of one service, pushed by the recovery signal."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, entry: SparkControlConfigEntry, service: str, key: str) -> None:
        """Bind to the entry and the service the value describes."""
        self._entry = entry
        self._service = service
        self._attr_translation_key = key
        self._attr_unique_id = f"{entry.unique_id or entry.entry_id}_{service}_{key}"
        self._attr_device_info = service_device(entry, service)

    @property
    def _recovery(self) -> SparkRecovery:
        return self._entry.runtime_data.recovery

    async def async_added_to_hass(self) -> None:
        """Follow recovery state changes."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(self.hass, recovery_signal(self._entry), self._refresh)
        )

    @callback
    def _refresh(self) -> None:
        self.async_write_ha_state()


class SparkWedgedBinarySensor(SparkRecoveryEntity, BinarySensorEntity):
    """On while the service is wedged: it answers /health but fails real work."""

    _attr_device_class = BinarySensorDeviceClass.PROBLEM

    def __init__(self, entry: SparkControlConfigEntry, service: str) -> None:
        """One per service."""
        super().__init__(entry, service, "wedged")

    @property
    def is_on(self) -> bool:
        """Whether the last check found the service wedged (and it has not recovered)."""
        return self._recovery.state(self._service).wedged

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Whether automatic restarts are used up while wedged."""
        return {"restart_suppressed": self._recovery.state(self._service).suppressed}


class SparkWedgesSensor(SparkRecoveryEntity, SensorEntity):
    """How many times the service was found wedged: 0 says "never" where a last-wedge
    timestamp could only say "unknown" (HA has no way to show a timestamp that never
    happened). When each wedge happened is in the logbook, under the Wedged sensor (HA keeps
    no logbook for a sensor with a state class)."""

    _attr_state_class = SensorStateClass.TOTAL_INCREASING
    _attr_entity_category = EntityCategory.DIAGNOSTIC

    def __init__(self, entry: SparkControlConfigEntry, service: str) -> None:
        """One per service."""
        super().__init__(entry, service, "wedges")

    @property
    def native_value(self) -> int:
        """Wedges found since the cluster was added (kept across restarts)."""
        return self._recovery.wedges(self._service)


class SparkRestartsInWindowSensor(SparkRecoveryEntity, SensorEntity):
    """Automatic restarts in the current budget window (it slides, so this one polls too)."""

    _attr_should_poll = True
    _attr_state_class = SensorStateClass.MEASUREMENT
    _attr_entity_category = EntityCategory.DIAGNOSTIC

    def __init__(self, entry: SparkControlConfigEntry, service: str) -> None:
        """One per service."""
        super().__init__(entry, service, "restarts_in_window")

    @property
    def native_value(self) -> int:
        """Restarts counted against the budget right now."""
        return self._recovery.restarts_in_window(self._service)

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The budget the count is measured against (vLLM has its own)."""
        budget = self._recovery.manager.budget
        return {
            "limit": budget.limit_for(self._service),
            "window_minutes": budget.window_for(self._service) / 60,
        }


def recovery_binary_sensors(entry: SparkControlConfigEntry) -> list[BinarySensorEntity]:
    """The `wedged` problem sensor of each service (vLLM's too: a frozen engine or a failing
    one-token probe wedges it)."""
    return [SparkWedgedBinarySensor(entry, service) for service in SERVICES]


def recovery_sensors(entry: SparkControlConfigEntry) -> list[SensorEntity]:
    """Wedge count and restarts in the window of each service."""
    entities: list[SensorEntity] = []
    for service in SERVICES:
        entities.append(SparkWedgesSensor(entry, service))
        entities.append(SparkRestartsInWindowSensor(entry, service))
    return entities


@callback
def async_remove_retired_sensors(hass: HomeAssistant, entry: SparkControlConfigEntry) -> None:
    """Drop the "Last wedge" timestamp sensors the Wedges counts replaced (before the first
    wedge they could only read "unknown"), so no orphan is left in the entity list."""
    registry = er.async_get(hass)
    for service in SPEECH_SERVICES:
        unique_id = f"{entry.unique_id or entry.entry_id}_{service}_last_wedge"
        if entity_id := registry.async_get_entity_id("sensor", DOMAIN, unique_id):
            registry.async_remove(entity_id)
