"""Base entity and the device tree (node → service) of Spark Control.

Only devices that carry entities exist: each node (its GPU sensors) and each service.
Entities carry their device's identifiers and details only; the link from a service to its
node is set when the entry registers its devices (`device_tree`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.device_registry import DeviceEntry, DeviceInfo
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity, DataUpdateCoordinator

from .cluster_config import node_hosting, nodes_of
from .const import (
    CONF_ENDPOINTS,
    DOMAIN,
    SERVICE_MAGPIE,
    SERVICE_PARAKEET,
    SERVICE_VLLM,
    SERVICES,
)
from .coordinator import SparkControlConfigEntry
from .sparklib.errors import SparkError

SERVICE_MODELS = {
    SERVICE_VLLM: "vLLM",
    SERVICE_PARAKEET: "Parakeet ASR",
    SERVICE_MAGPIE: "Magpie TTS",
}
SERVICE_MAKERS = {
    SERVICE_VLLM: "vLLM project",
    SERVICE_PARAKEET: "NVIDIA",
    SERVICE_MAGPIE: "NVIDIA",
}


def _base_id(entry: SparkControlConfigEntry) -> str:
    return entry.unique_id or entry.entry_id


def logbook_entity(
    hass: HomeAssistant, entry: SparkControlConfigEntry, platform: str, key: str
) -> dict[str, str]:
    """`{"entity_id": …}` of the entry's entity with `key` (its unique id's end), for an
    event's data; empty when that entity is not registered.

    HA's logbook files an event under the entity its data names: the entity's own logbook
    and every logbook card that lists the entity filter on this key.
    """
    unique_id = f"{_base_id(entry)}_{key}"
    entity_id = er.async_get(hass).async_get_entity_id(platform, DOMAIN, unique_id)
    return {"entity_id": entity_id} if entity_id else {}


@callback
def async_drop_logbook_card_states(hass: HomeAssistant, entry: SparkControlConfigEntry) -> None:
    """Remove the states of the entities whose logbooks the dashboard shows as cards of the
    integration's own lines: the model select (swaps) and the Wedged sensors (wedges,
    restarts, recoveries). Called before the platforms unload and before they set up.

    Unloading the entry (a reload, an options change) leaves HA's restored `unavailable` in
    an entity's place, and setting it up again replaces that: both state changes would be
    listed on those cards ("became unavailable", "changed to …"), and HA's logbook cannot
    filter them. A state added where there was none, or removed, is no logbook line.
    """
    keys = [("select", "model")] + [("binary_sensor", f"{service}_wedged") for service in SERVICES]
    for platform, key in keys:
        if entity_id := logbook_entity(hass, entry, platform, key).get("entity_id"):
            hass.states.async_remove(entity_id)


def node_device(entry: SparkControlConfigEntry, node: str) -> DeviceInfo:
    """One GPU node, named by the host name it reports, with its GPU and driver.

    Before the node answered (or when it cannot say) the configured host stands in.
    """
    runtime = getattr(entry, "runtime_data", None)
    facts = runtime.node_facts.get(node) if runtime is not None else None
    gpu = facts.gpu_name if facts is not None else None
    return DeviceInfo(
        identifiers={(DOMAIN, f"{_base_id(entry)}_node_{node}")},
        name=facts.hostname if facts is not None else node,
        manufacturer="NVIDIA" if gpu and gpu.upper().startswith("NVIDIA") else None,
        model=gpu.removeprefix("NVIDIA ") if gpu else "GPU node",
        sw_version=f"Driver {facts.driver_version}"
        if facts is not None and facts.driver_version
        else None,
    )


def service_device(entry: SparkControlConfigEntry, service: str) -> DeviceInfo:
    """One service (vLLM, Parakeet, Magpie), run by one of the nodes."""
    return DeviceInfo(
        identifiers={(DOMAIN, f"{_base_id(entry)}_{service}")},
        name=f"{entry.title} {SERVICE_MODELS[service]}",
        manufacturer=SERVICE_MAKERS[service],
        model=SERVICE_MODELS[service],
        configuration_url=entry.runtime_data.client.base_url(service)
        if CONF_ENDPOINTS in entry.data
        else None,
    )


def _located_node(entry: SparkControlConfigEntry, service: str) -> str:
    """Where the client placed a service whose host is spelled unlike its node's (a host
    name against an IP); the head for a service on a host that is no node."""
    try:
        return entry.runtime_data.client.node_for(service).name
    except SparkError:
        return nodes_of(entry.data)[0]


def device_tree(entry: SparkControlConfigEntry) -> list[tuple[DeviceInfo, str | None]]:
    """Every device of the entry with the identifier of its parent, parents first.

    The parent link lives only here: HA >= 2026.8 deprecates DeviceInfo's `via_device`
    (identifier) for `via_device_id` (registry id), which 2026.2 lacks, so the entry's setup
    registers the tree and links it by registry id, which every supported release accepts.
    """
    base = _base_id(entry)
    tree: list[tuple[DeviceInfo, str | None]] = [
        (node_device(entry, node), None) for node in nodes_of(entry.data)
    ]
    for service in SERVICES:
        # The service's node; the cluster's placement by address, else its head.
        node = node_hosting(entry.data, service) or _located_node(entry, service)
        tree.append((service_device(entry, service), f"{base}_node_{node}"))
    return tree


def entry_devices(hass: HomeAssistant, entry: SparkControlConfigEntry) -> dict[str, DeviceEntry]:
    """The entry's registered devices by identifier (HA >= 2026.8 deprecates looking a device
    up by identifiers across entries; this works on every supported release)."""
    registry = dr.async_get(hass)
    return {
        identifier: device
        for device in dr.async_entries_for_config_entry(registry, entry.entry_id)
        for domain, identifier in device.identifiers
        if domain == DOMAIN
    }


class SparkControlEntity[CoordinatorT: DataUpdateCoordinator[Any]](CoordinatorEntity[CoordinatorT]):
    """An entity of one cluster entry; `key` makes its unique id within the entry."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: CoordinatorT, *, key: str, device_info: DeviceInfo) -> None:
        super().__init__(coordinator)
        entry = coordinator.config_entry
        assert entry is not None  # our coordinators always belong to an entry
        self._attr_unique_id = f"{_base_id(entry)}_{key}"
        self._attr_device_info = device_info


@dataclass(frozen=True, kw_only=True)
class ServiceEntityDescription(EntityDescription):
    """An entity of one service (vLLM, Parakeet, Magpie), shown on that service's device."""

    service: str


class SparkServiceEntity[CoordinatorT: DataUpdateCoordinator[Any]](
    SparkControlEntity[CoordinatorT]
):
    """An entity on its service's device, keyed and described by its description."""

    def __init__(self, coordinator: CoordinatorT, description: ServiceEntityDescription) -> None:
        entry = coordinator.config_entry
        assert entry is not None  # our coordinators always belong to an entry
        super().__init__(
            coordinator, key=description.key, device_info=service_device(entry, description.service)
        )
        self.entity_description = description
