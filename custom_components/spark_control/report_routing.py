"""Which cluster a wedge report belongs to, so one cluster's wedge never probes or restarts
another's.

A report names its cluster by `entry_id` (the Wyoming bridge, inside HA) or by `upstream`, the
service's URL as the gateway reaches it (matched against each cluster's endpoint for that
service). A report naming neither is taken only when a single cluster is loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import HomeAssistant
from yarl import URL

from .cluster_config import endpoint_of
from .const import DOMAIN, LOGGER
from .sparklib.hosts import same_host


def _serves(entry: ConfigEntry[Any], service: str, upstream: str) -> bool:
    """Whether the entry's endpoint for `service` is the host and port of `upstream`."""
    try:
        url = URL(upstream)
    except ValueError:
        return False
    if url.host is None:
        return False
    endpoint = endpoint_of(entry.data, service)
    return same_host(url.host, endpoint.host) and url.port == endpoint.port


def report_is_for(hass: HomeAssistant, entry: ConfigEntry[Any], report: Mapping[str, Any]) -> bool:
    """Whether `entry`'s recovery should act on this (validated) wedge report."""
    if (entry_id := report.get("entry_id")) is not None:
        return bool(entry_id == entry.entry_id)
    loaded = [
        other
        for other in hass.config_entries.async_entries(DOMAIN)
        if other.state is ConfigEntryState.LOADED
    ]
    if upstream := report.get("upstream"):
        owners = [other.entry_id for other in loaded if _serves(other, report["service"], upstream)]
        if owners:
            return entry.entry_id in owners
    if len(loaded) == 1:
        return loaded[0].entry_id == entry.entry_id
    if loaded and loaded[0].entry_id == entry.entry_id:  # say it once, not once per cluster
        LOGGER.warning(
            "Ignoring a %s wedge report from %s: it names no cluster (upstream %s matches "
            "none of %d clusters)",
            report["service"],
            report.get("source", "unknown"),
            upstream or "not given",
            len(loaded),
        )
    return False
