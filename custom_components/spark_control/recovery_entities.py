"""Entities that show recovery state: wedged flag, last wedge time, restarts in the window.

They live on each speech service's device and follow `SparkRecovery` through a dispatcher
signal. The platforms (`binary_sensor.py`, `sensor.py`) add them with the two builders below.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from homeassistant.components.binary_sensor import BinarySensorDeviceClass, BinarySensorEntity
from homeassistant.components.sensor import SensorDeviceClass, SensorEntity, SensorStateClass
from homeassistant.const import EntityCategory
from homeassistant.core import callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity
from homeassistant.util import dt as dt_util

from .const import SPEECH_SERVICES
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
        """One per speech service."""
        super().__init__(entry, service, "wedged")

    @property
    def is_on(self) -> bool:
        """Whether the last check found the service wedged (and it has not recovered)."""
        return self._recovery.state(self._service).wedged

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Whether automatic restarts are used up while wedged."""
        return {"restart_suppressed": self._recovery.state(self._service).suppressed}


class SparkLastWedgeSensor(SparkRecoveryEntity, SensorEntity):
    """When the service was last found wedged."""

    _attr_device_class = SensorDeviceClass.TIMESTAMP
    _attr_entity_category = EntityCategory.DIAGNOSTIC

    def __init__(self, entry: SparkControlConfigEntry, service: str) -> None:
        """One per speech service."""
        super().__init__(entry, service, "last_wedge")

    @property
    def native_value(self) -> datetime | None:
        """The time of the last wedge, if any was seen."""
        stamp = self._recovery.state(self._service).last_wedge_at
        return None if stamp is None else dt_util.utc_from_timestamp(stamp)


class SparkRestartsInWindowSensor(SparkRecoveryEntity, SensorEntity):
    """Automatic restarts in the current budget window (it slides, so this one polls too)."""

    _attr_should_poll = True
    _attr_state_class = SensorStateClass.MEASUREMENT
    _attr_entity_category = EntityCategory.DIAGNOSTIC

    def __init__(self, entry: SparkControlConfigEntry, service: str) -> None:
        """One per speech service."""
        super().__init__(entry, service, "restarts_in_window")

    @property
    def native_value(self) -> int:
        """Restarts counted against the budget right now."""
        return self._recovery.restarts_in_window(self._service)

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The budget the count is measured against."""
        budget = self._recovery.manager.budget
        return {"limit": budget.limit, "window_minutes": budget.window / 60}


def recovery_binary_sensors(entry: SparkControlConfigEntry) -> list[BinarySensorEntity]:
    """The `wedged` problem sensor of each speech service."""
    return [SparkWedgedBinarySensor(entry, service) for service in SPEECH_SERVICES]


def recovery_sensors(entry: SparkControlConfigEntry) -> list[SensorEntity]:
    """Last wedge time and restarts in the window of each speech service."""
    entities: list[SensorEntity] = []
    for service in SPEECH_SERVICES:
        entities.append(SparkLastWedgeSensor(entry, service))
        entities.append(SparkRestartsInWindowSensor(entry, service))
    return entities
