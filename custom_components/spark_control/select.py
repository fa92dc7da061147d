"""Select: the model vLLM serves; choosing another one starts a swap."""

from __future__ import annotations

from typing import Any

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.restore_state import RestoreEntity

from .const import DOMAIN, SERVICE_VLLM
from .coordinator import SparkControlConfigEntry, SparkStatusCoordinator
from .entity import SparkControlEntity, service_device

PARALLEL_UPDATES = 1

MODEL_SELECT = SelectEntityDescription(key="model", translation_key="model")
ATTR_LAST_SERVED_KEY = "last_served_key"


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SparkControlConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the model select."""
    async_add_entities([SparkModelSelect(entry.runtime_data.status)])


class SparkModelSelect(SparkControlEntity[SparkStatusCoordinator], SelectEntity, RestoreEntity):
    """Options are the catalog's display names; a served model outside the catalog shows its
    repo id. During a swap it shows the swap's target (from the swap coordinator), after it
    what vLLM reports serving. It remembers the catalog model vLLM served last, also across
    restarts of Home Assistant: the add-on gateway starts that one for a request naming
    `current` while vLLM is stopped."""

    entity_description = MODEL_SELECT
    # The whole catalog changes only with it: keep it out of every recorded state change.
    _unrecorded_attributes = frozenset({"catalog"})

    def __init__(self, coordinator: SparkStatusCoordinator) -> None:
        super().__init__(
            coordinator,
            key=MODEL_SELECT.key,
            device_info=service_device(coordinator.config_entry, SERVICE_VLLM),
        )
        self._runtime = coordinator.config_entry.runtime_data

    async def async_added_to_hass(self) -> None:
        """Follow catalog changes and swaps as well as the polls."""
        await super().async_added_to_hass()
        last = await self.async_get_last_state()
        restored = last.attributes.get(ATTR_LAST_SERVED_KEY) if last is not None else None
        if self.coordinator.last_served_key is None and isinstance(restored, str):
            # Home Assistant restarted while vLLM served nothing: its saved state is the memory.
            self.coordinator.last_served_key = restored
        self.async_on_remove(self._runtime.catalog.async_add_listener(self.async_write_ha_state))
        self.async_on_remove(self._runtime.swap.async_add_listener(self._handle_coordinator_update))

    def _label(self, key: str) -> str:
        return self._runtime.catalog.catalog.label(key)

    def _shown(self) -> str | None:
        """The swap's target while one runs, else the served model (None: nothing served)."""
        if (target := self._runtime.swap.data.target) is not None:
            return self._label(target)
        vllm = self.coordinator.data.vllm
        if vllm is None or not vllm.models:
            return None
        served = vllm.models[0]
        entry = self._runtime.catalog.catalog.find_by_repo_id(served)
        return self._label(entry.key) if entry is not None else served

    def _shown_key(self) -> str | None:
        """The catalog key of the model shown (None when it is not in the catalog)."""
        if (target := self._runtime.swap.data.target) is not None:
            return target
        return self.coordinator.served_key()

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The shown model's catalog key, the catalog key of the model vLLM served last and
        the catalog (key -> display name and repo id): the add-on gateway accepts catalog keys
        as model names and can ask for a swap."""
        catalog = self._runtime.catalog.catalog
        labels = {key: label for label, key in catalog.labels().items()}
        last = self.coordinator.last_served_key
        return {
            "catalog_key": self._shown_key(),
            ATTR_LAST_SERVED_KEY: last if last in catalog else None,
            "catalog": {
                model.key: {"name": labels[model.key], "repo_id": model.repo_id}
                for model in catalog.models
            },
        }

    @property
    def options(self) -> list[str]:
        """Every catalog model by name, plus the served one if the catalog lacks it."""
        labels = list(self._runtime.catalog.catalog.labels())
        shown = self._shown()
        return labels if shown is None or shown in labels else [*labels, shown]

    @property
    def current_option(self) -> str | None:
        """The swap's target, else what vLLM serves (None while nothing is loaded)."""
        return self._shown()

    async def async_select_option(self, option: str) -> None:
        """Start a swap to the chosen catalog model (also while vLLM is stopped); progress
        shows on the swap sensor."""
        key = self._runtime.catalog.catalog.labels().get(option)
        if key is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="model_not_in_catalog",
                translation_placeholders={"model": option},
            )
        self._runtime.swap.async_start(key)
