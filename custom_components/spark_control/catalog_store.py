"""The model catalog of one cluster, persisted in HA's storage.

Only the user's part (their models and per-model overrides) is stored; the bundled list is
read from `models.yaml` at every setup so integration updates reach unmodified entries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.storage import Store

from .const import DOMAIN
from .sparklib.catalog import STORAGE_VERSION, Catalog, load_bundled_models


def _storage_key(entry_id: str) -> str:
    return f"{DOMAIN}.{entry_id}.catalog"


class CatalogStore:
    """Holds the live Catalog, saves it after each change and tells listeners."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        self._store: Store[dict[str, Any]] = Store(hass, STORAGE_VERSION, _storage_key(entry_id))
        self._listeners: list[Callable[[], None]] = []
        self.catalog = Catalog(())

    async def async_load(self, hass: HomeAssistant) -> None:
        """Read the bundled file (in the executor) and the stored user part."""
        bundled = await hass.async_add_executor_job(load_bundled_models)
        self.catalog = Catalog.from_dict(await self._store.async_load(), bundled)

    async def async_changed(self) -> None:
        """Persist the catalog after a change and refresh whoever shows it."""
        await self._store.async_save(self.catalog.to_dict())
        for listener in list(self._listeners):
            listener()

    @callback
    def async_add_listener(self, listener: Callable[[], None]) -> CALLBACK_TYPE:
        """Call `listener` after every change; returns the function that removes it."""
        self._listeners.append(listener)

        @callback
        def remove() -> None:
            self._listeners.remove(listener)

        return remove


async def async_remove_catalog(hass: HomeAssistant, entry_id: str) -> None:
    """Delete the stored catalog when its cluster entry is removed."""
    await Store[dict[str, Any]](hass, STORAGE_VERSION, _storage_key(entry_id)).async_remove()
