"""Buttons: restart a service's container."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.components.button import (
    ButtonDeviceClass,
    ButtonEntity,
    ButtonEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import SERVICES
from .coordinator import SparkControlConfigEntry, SparkStatusCoordinator
from .entity import ServiceEntityDescription, SparkServiceEntity
from .errors import spark_exception_handler
from .operations_entities import operations_buttons
from .service_control import async_service_action

PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class SparkButtonEntityDescription(ButtonEntityDescription, ServiceEntityDescription):
    """A button acting on one service."""


BUTTONS: tuple[SparkButtonEntityDescription, ...] = tuple(
    SparkButtonEntityDescription(
        key=f"{service}_restart",
        device_class=ButtonDeviceClass.RESTART,
        entity_category=EntityCategory.CONFIG,
        service=service,
    )
    for service in SERVICES
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SparkControlConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a restart button per service, and the download's cancel button."""
    status = entry.runtime_data.status
    async_add_entities(SparkRestartButton(status, description) for description in BUTTONS)
    async_add_entities(operations_buttons(entry))  # cancel a model download (operations)


class SparkRestartButton(SparkServiceEntity[SparkStatusCoordinator], ButtonEntity):
    """`docker restart` of the service's container on its node."""

    entity_description: SparkButtonEntityDescription

    @property
    def available(self) -> bool:
        """A restart also works on a service that does not answer: only SSH matters."""
        return True

    @spark_exception_handler
    async def async_press(self) -> None:
        """Restart the container, then poll at once to show the outcome."""
        await async_service_action(
            self.coordinator.config_entry, self.entity_description.service, "restart"
        )
