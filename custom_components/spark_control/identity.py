"""Which cluster an entry is: its head node's pinned SSH host key, not a host name or address.

Host names and IP addresses change (DHCP, a new name, `host:port` written two ways), so they
make a poor unique id (HA's developer docs rule them out). The head node's host key stays with
the machine: its SHA256 fingerprint, the one `ssh-keygen -l` and the config flow show, is the
entry's unique id. Config entries before 1.2 used the head node's host string; the migration
moves them and their entities and devices to the fingerprint without changing any entity id.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er

from .cluster_config import node_address, nodes_of
from .const import CONF_HOST_KEYS, DOMAIN
from .sparklib.keys import fingerprint

LOGGER = logging.getLogger(__package__)

ENTRY_VERSION = 1
ENTRY_MINOR_VERSION = 2  # 1.2: unique id is the head node's host key fingerprint


def head_address(data: Mapping[str, Any]) -> tuple[str, int]:
    """The head node's SSH address in one spelling: `h:2222` with port 22 and `h` with port
    2222 are the same node, and so are `::1`/`[0:0::1]` or `Spark.lan.`/`spark.lan`."""
    address = node_address(data, nodes_of(data)[0])
    try:
        host = ipaddress.ip_address(address.host).compressed
    except ValueError:
        host = address.host.lower().removesuffix(".")
    return host, address.port


def cluster_unique_id(data: Mapping[str, Any]) -> str | None:
    """The fingerprint of the head node's pinned host key (None before it is pinned)."""
    line = data.get(CONF_HOST_KEYS, {}).get(nodes_of(data)[0])
    return fingerprint(line) if line else None


async def async_migrate_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Move a 1.1 entry (unique id = head host) to 1.2 (unique id = host key fingerprint),
    renaming its entities' unique ids and its devices' identifiers so nothing is recreated."""
    if entry.version > ENTRY_VERSION:
        return False  # written by a newer release: refuse rather than guess
    if entry.version == ENTRY_VERSION and entry.minor_version < ENTRY_MINOR_VERSION:
        new_id = cluster_unique_id(entry.data)
        taken = {
            other.unique_id
            for other in hass.config_entries.async_entries(DOMAIN)
            if other.entry_id != entry.entry_id
        }
        if new_id is None or new_id in taken:
            # No pinned key, or a second entry for the same cluster (older releases accepted
            # one node written two ways): keep its old id so neither entry breaks.
            LOGGER.warning(
                "Entry %s keeps its unique id %s: %s",
                entry.title,
                entry.unique_id,
                "another entry is the same cluster" if new_id else "no pinned head node key",
            )
        else:
            await _async_rename_ids(hass, entry, entry.unique_id or entry.entry_id, new_id)
            hass.config_entries.async_update_entry(entry, unique_id=new_id)
        hass.config_entries.async_update_entry(entry, minor_version=ENTRY_MINOR_VERSION)
    return True


async def _async_rename_ids(hass: HomeAssistant, entry: ConfigEntry, old: str, new: str) -> None:
    prefix = f"{old}_"

    @callback
    def _entity(item: er.RegistryEntry) -> dict[str, Any] | None:
        if item.unique_id.startswith(prefix):
            return {"new_unique_id": new + item.unique_id[len(old) :]}
        return None

    await er.async_migrate_entries(hass, entry.entry_id, _entity)
    devices = dr.async_get(hass)
    for device in dr.async_entries_for_config_entry(devices, entry.entry_id):
        renamed = {
            (domain, new + ident[len(old) :])
            if domain == DOMAIN and (ident == old or ident.startswith(prefix))
            else (domain, ident)
            for domain, ident in device.identifiers
        }
        if renamed != device.identifiers:
            devices.async_update_device(device.id, new_identifiers=renamed)
