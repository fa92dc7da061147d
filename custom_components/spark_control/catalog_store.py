"""The model catalog of one cluster, kept in the entry's config subentries (one per model).

The bundled list is read from `models.yaml` at every setup, so integration updates reach every
bundled model the user did not edit. The user's part lives in subentries of type `model`
(unique id = the catalog key): one per model they added (`data["model"]`, plus
`data["options"]`), and one per bundled model they adjusted (`data["options"]` only). The
subentries are the one home of that part: the catalog UI (`catalog_subentry.py`) edits them
directly, the actions edit the catalog and `async_changed` writes it back; either way
`async_entry_updated` rebuilds the catalog from them. A catalog stored by an older version in
HA's storage is moved into subentries once.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.storage import Store

from .const import DOMAIN
from .sparklib.catalog import STORAGE_VERSION, Catalog, ModelEntry, load_bundled_models

if TYPE_CHECKING:
    from .coordinator import SparkControlConfigEntry

SUBENTRY_MODEL = "model"


def _storage_key(entry_id: str) -> str:
    return f"{DOMAIN}.{entry_id}.catalog"


def subentry_contents(catalog: Catalog) -> dict[str, tuple[str, dict[str, Any]]]:
    """Catalog key → (title, data) of the subentry the user's part of `catalog` needs."""
    stored = catalog.to_dict()
    overrides: dict[str, dict[str, Any]] = stored["overrides"]
    contents: dict[str, tuple[str, dict[str, Any]]] = {}
    for model in stored["user_models"]:
        data = {"model": model, "options": overrides.get(model["key"], {})}
        contents[model["key"]] = (model["name"], data)
    for key, options in overrides.items():
        if key not in contents:
            contents[key] = (catalog.get(key).name, {"options": options})
    return contents


def catalog_from_subentries(
    subentries: MappingProxyType[str, ConfigSubentry], bundled: tuple[ModelEntry, ...]
) -> Catalog:
    """Bundled models plus the subentries' models and overrides (invalid ones dropped with a
    warning by `Catalog.from_dict`)."""
    user_models: list[Any] = []
    overrides: dict[str, Any] = {}
    for subentry in subentries.values():
        if subentry.subentry_type != SUBENTRY_MODEL or subentry.unique_id is None:
            continue
        if "model" in subentry.data:
            user_models.append(dict(subentry.data["model"]))
        if subentry.data.get("options"):
            overrides[subentry.unique_id] = dict(subentry.data["options"])
    return Catalog.from_dict({"user_models": user_models, "overrides": overrides}, bundled)


class CatalogStore:
    """Holds the live Catalog, writes the user's part to subentries and tells listeners."""

    def __init__(self, hass: HomeAssistant, entry: SparkControlConfigEntry) -> None:
        self._hass = hass
        self._entry = entry
        self._listeners: list[Callable[[], None]] = []
        self._bundled: tuple[ModelEntry, ...] = ()
        self.catalog = Catalog(())

    @property
    def bundled(self) -> tuple[ModelEntry, ...]:
        """The models shipped in `models.yaml`."""
        return self._bundled

    async def async_load(self, hass: HomeAssistant) -> None:
        """Read the bundled file (in the executor) and the subentries; move an older
        version's stored catalog into subentries."""
        self._bundled = await hass.async_add_executor_job(load_bundled_models)
        legacy: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, _storage_key(self._entry.entry_id)
        )
        stored = await legacy.async_load()
        if stored and not self._entry.subentries:
            self.catalog = Catalog.from_dict(stored, self._bundled)
            self._write_subentries()
        if stored is not None:
            await legacy.async_remove()
        self.catalog = catalog_from_subentries(self._entry.subentries, self._bundled)

    async def async_changed(self) -> None:
        """After an action changed the catalog: write it to the subentries, tell listeners."""
        self._write_subentries()
        self._notify()

    @callback
    def async_entry_updated(self) -> None:
        """The entry changed (a subentry was added, edited or removed in the UI): rebuild."""
        catalog = catalog_from_subentries(self._entry.subentries, self._bundled)
        if catalog.to_dict() != self.catalog.to_dict():
            self.catalog = catalog
            self._notify()

    def _write_subentries(self) -> None:
        """Make the subentries match the catalog's user part (add, update, remove)."""
        entries = self._hass.config_entries
        wanted = subentry_contents(self.catalog)
        existing = {
            subentry.unique_id: subentry
            for subentry in self._entry.subentries.values()
            if subentry.subentry_type == SUBENTRY_MODEL
        }
        for key, stale in existing.items():
            if key not in wanted:
                entries.async_remove_subentry(self._entry, stale.subentry_id)
        for key, (title, data) in wanted.items():
            if (subentry := existing.get(key)) is None:
                entries.async_add_subentry(
                    self._entry,
                    ConfigSubentry(
                        data=MappingProxyType(data),
                        subentry_type=SUBENTRY_MODEL,
                        title=title,
                        unique_id=key,
                    ),
                )
            elif dict(subentry.data) != data or subentry.title != title:
                entries.async_update_subentry(self._entry, subentry, data=data, title=title)

    def _notify(self) -> None:
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
    """Delete a catalog an older version stored (the subentries go with the entry)."""
    await Store[dict[str, Any]](hass, STORAGE_VERSION, _storage_key(entry_id)).async_remove()
