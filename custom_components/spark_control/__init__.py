"""Spark Control: run a home-lab GPU cluster (vLLM, Parakeet, Magpie) from Home Assistant."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from homeassistant.config_entries import (
    SIGNAL_CONFIG_ENTRY_CHANGED,
    ConfigEntry,
    ConfigEntryChange,
)
from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    issue_registry as ir,
)
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.typing import ConfigType

from .catalog_store import CatalogStore, async_remove_catalog
from .cluster_config import build_cluster_config, nodes_of
from .const import DOMAIN, LOGGER, SERVICES
from .coordinator import (
    SparkControlConfigEntry,
    SparkControlRuntimeData,
    SparkMetricsCoordinator,
    SparkStatusCoordinator,
)
from .dashboard import async_register_dashboard_strategy
from .device_versions import async_track_service_versions
from .entity import async_drop_logbook_card_states, device_tree
from .errors import async_handle_key_error, setup_error
from .host_key_issue import host_key_issue_id
from .identity import async_migrate_entry
from .operations import async_setup_operations
from .recovery import (
    async_create_recovery,
    async_remove_recovery_store,
    async_start_recovery,
    suppressed_issue_id,
)
from .services import async_setup_services
from .sparklib.cluster import ClusterClient
from .sparklib.errors import InvalidInput, SparkError
from .swap_control import SparkSwapCoordinator
from .swap_history import async_remove_swap_history, async_setup_swap_history
from .swap_notifications import async_dismiss_all as async_dismiss_swap_notifications
from .voice import async_setup_voice, async_unload_voice

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.SELECT,
    Platform.SENSOR,
    Platform.SWITCH,
    Platform.UPDATE,
]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)

__all__ = ["async_migrate_entry"]  # HA calls it when an entry's version is older


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions once for every cluster, and the dashboard strategy."""
    async_setup_services(hass)
    await async_register_dashboard_strategy(hass)
    return True


async def _async_connect(hass: HomeAssistant, entry: SparkControlConfigEntry) -> ClusterClient:
    """Connect to every node with the pinned host keys; map failures to setup outcomes."""
    try:
        client = ClusterClient(build_cluster_config(entry.data), async_get_clientsession(hass))
    except InvalidInput as error:
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="invalid_config",
            translation_placeholders={"error": str(error)},
        ) from error
    try:
        await client.validate()
    except SparkError as error:
        await client.close()
        async_handle_key_error(hass, entry, error)
        raise setup_error(error) from error
    # Services whose host is spelled unlike their node's (a name for an IP) are placed by
    # address now; one on a host that is no node is logged and refused when acted on.
    for service, node in (await client.locate_services()).items():
        if node is None:
            LOGGER.warning(
                "%s: %s runs on %s, which is not one of the SSH nodes; its container cannot "
                "be started, stopped or restarted from Home Assistant",
                entry.title,
                service,
                client.config.endpoints[service].host,
            )
    return client


async def async_setup_entry(hass: HomeAssistant, entry: SparkControlConfigEntry) -> bool:
    """Connect, load the catalog, poll once, then add the entities and the extras."""
    client = await _async_connect(hass, entry)
    for node in nodes_of(entry.data):
        ir.async_delete_issue(hass, DOMAIN, host_key_issue_id(entry.entry_id, node))

    async def _close_client(_: Event | None = None) -> None:
        await client.close()

    try:
        catalog = CatalogStore(hass, entry)
        await catalog.async_load(hass)
        status = SparkStatusCoordinator(hass, entry, client)
        metrics = SparkMetricsCoordinator(hass, entry, client)
        entry.runtime_data = SparkControlRuntimeData(
            client=client,
            status=status,
            metrics=metrics,
            catalog=catalog,
            swap=SparkSwapCoordinator(hass, entry, client),
            recovery=await async_create_recovery(hass, entry, client),
        )
        await status.async_config_entry_first_refresh()
        await metrics.async_config_entry_first_refresh()
        with contextlib.suppress(SparkError):  # the configured hosts stand in for names
            entry.runtime_data.node_facts = await client.node_facts()
    except BaseException:
        await client.close()
        raise
    # HA does not unload entries on stop; close the SSH connections ourselves.
    entry.async_on_unload(hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _close_client))
    # Models added, edited or removed in the UI (config subentries) reach the catalog at once
    # (a signal, not an update listener: the options flow reloads by itself).
    entry.async_on_unload(
        async_dispatcher_connect(hass, SIGNAL_CONFIG_ENTRY_CHANGED, _entry_changed(entry))
    )

    _register_devices(hass, entry)
    await async_setup_operations(hass, entry)
    entry.runtime_data.swap_history = await async_setup_swap_history(hass, entry)
    # Recovery and the voice bridges run before the entities that show them are added.
    async_start_recovery(hass, entry)
    entry.runtime_data.voice = await async_setup_voice(hass, entry, client)
    async_drop_logbook_card_states(hass, entry)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    await async_track_service_versions(hass, entry)
    return True


def _entry_changed(
    entry: SparkControlConfigEntry,
) -> Callable[[ConfigEntryChange, ConfigEntry[Any]], None]:
    @callback
    def changed(change: ConfigEntryChange, changed_entry: ConfigEntry[Any]) -> None:
        if change is ConfigEntryChange.UPDATED and changed_entry.entry_id == entry.entry_id:
            entry.runtime_data.catalog.async_entry_updated()

    return changed


def _register_devices(hass: HomeAssistant, entry: SparkControlConfigEntry) -> None:
    """Register (or rename, once the nodes told their host names) the device tree parents
    first, link each service to its node by registry id, and drop devices this entry no longer
    has: nodes a reconfiguration removed, and the entity-less cluster and gateway devices of
    earlier versions."""
    registry = dr.async_get(hass)
    device_ids: dict[str, str] = {}
    for device, parent in device_tree(entry):
        registered = registry.async_get_or_create(config_entry_id=entry.entry_id, **device)
        device_ids.update((identifier, registered.id) for _, identifier in device["identifiers"])
        via_device_id = device_ids[parent] if parent is not None else None
        if registered.via_device_id != via_device_id:
            registry.async_update_device(registered.id, via_device_id=via_device_id)
    for stale in dr.async_entries_for_config_entry(registry, entry.entry_id):
        if stale.id not in device_ids.values():
            registry.async_remove_device(stale.id)


async def async_unload_entry(hass: HomeAssistant, entry: SparkControlConfigEntry) -> bool:
    """Stop the extras, remove the entities and close the SSH connections."""
    await entry.runtime_data.recovery.async_stop()
    await async_unload_voice(hass, entry)
    async_drop_logbook_card_states(hass, entry)
    if unloaded := await hass.config_entries.async_unload_platforms(entry, PLATFORMS):
        await entry.runtime_data.client.close()
    return unloaded


async def async_remove_entry(hass: HomeAssistant, entry: SparkControlConfigEntry) -> None:
    """Forget everything stored for the cluster: its catalog, its restart budget, its
    repair issues (they are persisted and would outlive the entry) and its swap
    notifications."""
    await async_remove_catalog(hass, entry.entry_id)
    await async_remove_recovery_store(hass, entry.entry_id)
    await async_remove_swap_history(hass, entry.entry_id)
    async_dismiss_swap_notifications(hass, entry.entry_id)
    for node in nodes_of(entry.data):
        ir.async_delete_issue(hass, DOMAIN, host_key_issue_id(entry.entry_id, node))
    for service in SERVICES:
        ir.async_delete_issue(hass, DOMAIN, suppressed_issue_id(entry, service))
