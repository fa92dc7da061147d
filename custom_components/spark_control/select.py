"""Select: the model vLLM serves; choosing another one starts a swap."""

from __future__ import annotations

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN, SERVICE_VLLM
from .coordinator import SparkControlConfigEntry, SparkStatusCoordinator
from .entity import SparkControlEntity, service_device

PARALLEL_UPDATES = 1

MODEL_SELECT = SelectEntityDescription(key="model", translation_key="model")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SparkControlConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the model select."""
    async_add_entities([SparkModelSelect(entry.runtime_data.status)])


class SparkModelSelect(SparkControlEntity[SparkStatusCoordinator], SelectEntity):
    """Options are the catalog's keys; a served model outside the catalog shows its repo id."""

    entity_description = MODEL_SELECT

    def __init__(self, coordinator: SparkStatusCoordinator) -> None:
        super().__init__(
            coordinator,
            key=MODEL_SELECT.key,
            device_info=service_device(coordinator.config_entry, SERVICE_VLLM),
        )
        self._runtime = coordinator.config_entry.runtime_data

    async def async_added_to_hass(self) -> None:
        """Follow catalog changes as well as the polls."""
        await super().async_added_to_hass()
        self.async_on_remove(self._runtime.catalog.async_add_listener(self.async_write_ha_state))

    @property
    def available(self) -> bool:
        """Unavailable while vLLM does not answer at all."""
        return super().available and self.coordinator.data.reachable(SERVICE_VLLM)

    def _served(self) -> str | None:
        """The served model as a catalog key, or its repo id when it is not in the catalog."""
        vllm = self.coordinator.data.vllm
        if vllm is None or not vllm.models:
            return None
        served = vllm.models[0]
        entry = self._runtime.catalog.catalog.find_by_repo_id(served)
        return entry.key if entry is not None else served

    @property
    def options(self) -> list[str]:
        """Every catalog model, plus the served one if the catalog lacks it."""
        keys = self._runtime.catalog.catalog.keys()
        served = self._served()
        return keys if served is None or served in keys else [*keys, served]

    @property
    def current_option(self) -> str | None:
        """What vLLM serves now (None while nothing is loaded)."""
        return self._served()

    async def async_select_option(self, option: str) -> None:
        """Start a swap to the chosen catalog model; progress shows on the swap sensor."""
        if option not in self._runtime.catalog.catalog:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="model_not_in_catalog",
                translation_placeholders={"model": option},
            )
        self._runtime.swap.async_start(option)
