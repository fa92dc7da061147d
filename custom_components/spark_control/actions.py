"""What every action of the integration shares: the field names and finding the cluster.

Home Assistant 2026.10 has `homeassistant.helpers.service.async_get_config_entry` (Peblar's way);
HA 2026.2, the oldest release this integration supports, does not, so `async_get_cluster_entry`
is its smallest equivalent, with our own translated errors. Switch to HA's helper once 2026.10 is
the minimum.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.exceptions import ServiceValidationError

from .const import DOMAIN

if TYPE_CHECKING:
    from .coordinator import SparkControlConfigEntry

ATTR_CLUSTER = "cluster"
ATTR_MODEL = "model"
ATTR_WAIT = "wait"
ATTR_SERVICE = "service"
ATTR_REPO_ID = "repo_id"


@callback
def async_get_cluster_entry(
    hass: HomeAssistant, call: ServiceCall, *, loaded: bool = True
) -> SparkControlConfigEntry:
    """The cluster entry named in the call's `cluster` field; a translated error if there is
    no such cluster or (with `loaded`) it is not running."""
    entry_id = call.data[ATTR_CLUSTER]
    entry: SparkControlConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_cluster",
            translation_placeholders={"cluster": entry_id},
        )
    if loaded and entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="cluster_not_loaded",
            translation_placeholders={"cluster": entry.title},
        )
    return entry
