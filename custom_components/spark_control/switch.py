"""Switches: a service's container running or stopped."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import SERVICE_VLLM, SERVICES
from .coordinator import SparkControlConfigEntry, SparkMetricsCoordinator
from .entity import ServiceEntityDescription, SparkServiceEntity
from .errors import spark_exception_handler
from .service_control import async_service_action
from .sparklib.commands import DockerAction

PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class SparkSwitchEntityDescription(SwitchEntityDescription, ServiceEntityDescription):
    """A switch for one service's container."""


SWITCHES: tuple[SparkSwitchEntityDescription, ...] = tuple(
    SparkSwitchEntityDescription(
        key=f"{service}_running",
        translation_key="running",
        # A configuration entity: HA's default exposure leaves every entity with a category
        # out of Assist, so "turn off everything" never stops a GPU service. Dashboards and
        # the device page still show and toggle it.
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
    """Add a running/stopped switch per service (container states come with the slow poll)."""
    metrics = entry.runtime_data.metrics
    async_add_entities(SparkServiceSwitch(metrics, description) for description in SWITCHES)


class SparkServiceSwitch(SparkServiceEntity[SparkMetricsCoordinator], SwitchEntity):
    """On while the service's container runs (as `docker ps` says); toggles the container.

    The container state, not HTTP reachability: a running container whose port does not
    answer (loading, wedged) is still "on", and turning it off is what stops it. vLLM's
    container runs `sleep infinity` with vLLM launched inside, so its switch says whether vLLM
    runs: on while a swap or start brings it up (its container is replaced meanwhile), off
    while its container runs with nothing listening on vLLM's port (a `docker restart`, or a
    server that exited); turning it on relaunches the model it served (see `service_control`).
    """

    entity_description: SparkSwitchEntityDescription

    async def async_added_to_hass(self) -> None:
        """vLLM's switch also follows the swaps and starts (pushed) and the fast health poll."""
        await super().async_added_to_hass()
        if self.entity_description.service == SERVICE_VLLM:
            runtime = self.coordinator.config_entry.runtime_data
            for source in (runtime.swap, runtime.status):
                self.async_on_remove(source.async_add_listener(self._handle_coordinator_update))

    @property
    def available(self) -> bool:
        """Unavailable while the node's container list cannot be read."""
        return super().available and self.coordinator.data.containers is not None

    @property
    def is_on(self) -> bool | None:
        """Whether the service's container is running (vLLM's: whether vLLM runs in it)."""
        service = self.entity_description.service
        running = self.coordinator.data.container_running(service)
        if service != SERVICE_VLLM:
            return running
        runtime = self.coordinator.config_entry.runtime_data
        if runtime.swap.running:
            return True
        status = runtime.status.data
        return running and not (status is not None and status.vllm_refused)

    async def async_turn_on(self, **kwargs: Any) -> None:
        """`docker start` the container."""
        await self._act("start")

    async def async_turn_off(self, **kwargs: Any) -> None:
        """`docker stop` the container."""
        await self._act("stop")

    @spark_exception_handler
    async def _act(self, action: DockerAction) -> None:
        await async_service_action(
            self.coordinator.config_entry, self.entity_description.service, action
        )
