"""Binary sensors: whether each service answers and is ready."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import SERVICE_MAGPIE, SERVICE_PARAKEET, SERVICE_VLLM
from .coordinator import ClusterStatus, SparkControlConfigEntry, SparkStatusCoordinator
from .entity import ServiceEntityDescription, SparkServiceEntity
from .recovery_entities import recovery_binary_sensors

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class SparkBinarySensorEntityDescription(BinarySensorEntityDescription, ServiceEntityDescription):
    """A binary sensor of one service, read from the status poll."""

    value_fn: Callable[[ClusterStatus], bool | None]
    exists_fn: Callable[[SparkControlConfigEntry], bool] = lambda _: True


def _connectivity(service: str) -> SparkBinarySensorEntityDescription:
    return SparkBinarySensorEntityDescription(
        key=f"{service}_connectivity",
        translation_key="connectivity",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        service=service,
        value_fn=lambda status: status.healthy(service),
    )


BINARY_SENSORS: tuple[SparkBinarySensorEntityDescription, ...] = tuple(
    _connectivity(service) for service in (SERVICE_VLLM, SERVICE_PARAKEET, SERVICE_MAGPIE)
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SparkControlConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a connectivity sensor per service."""
    status = entry.runtime_data.status
    async_add_entities(
        SparkBinarySensor(status, description)
        for description in BINARY_SENSORS
        if description.exists_fn(entry)
    )
    # Recovery's "wedged" problem sensors (recovery_entities.py).
    async_add_entities(recovery_binary_sensors(entry))


class SparkBinarySensor(SparkServiceEntity[SparkStatusCoordinator], BinarySensorEntity):
    """Health of a service; off (not unavailable) when the service does not answer."""

    entity_description: SparkBinarySensorEntityDescription

    @property
    def is_on(self) -> bool | None:
        """The description's reading of the latest poll."""
        return self.entity_description.value_fn(self.coordinator.data)
