"""Base entity and the device tree (cluster → node → service) of Spark Control."""

from __future__ import annotations

from typing import Any

from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity, DataUpdateCoordinator

from .cluster_config import endpoint_of, node_hosting, nodes_of
from .const import (
    CONF_ENDPOINTS,
    CONF_GATEWAY_URL,
    DOMAIN,
    SERVICE_MAGPIE,
    SERVICE_PARAKEET,
    SERVICE_VLLM,
)
from .coordinator import SparkControlConfigEntry

SERVICE_MODELS = {
    SERVICE_VLLM: "vLLM",
    SERVICE_PARAKEET: "Parakeet ASR",
    SERVICE_MAGPIE: "Magpie TTS",
}


def _base_id(entry: SparkControlConfigEntry) -> str:
    return entry.unique_id or entry.entry_id


def cluster_device(entry: SparkControlConfigEntry) -> DeviceInfo:
    """The cluster as a whole: the root of the device tree."""
    return DeviceInfo(
        identifiers={(DOMAIN, _base_id(entry))},
        name=entry.title,
        manufacturer="Spark Control",
        model="GPU cluster",
    )


def node_device(entry: SparkControlConfigEntry, node: str) -> DeviceInfo:
    """One GPU node, reached over SSH."""
    head = nodes_of(entry.data)[0]
    return DeviceInfo(
        identifiers={(DOMAIN, f"{_base_id(entry)}_node_{node}")},
        name=f"{entry.title} {node}",
        manufacturer="Spark Control",
        model="Head node" if node == head else "GPU node",
        via_device=(DOMAIN, _base_id(entry)),
    )


def service_device(entry: SparkControlConfigEntry, service: str) -> DeviceInfo:
    """One service (vLLM, Parakeet, Magpie), linked to the node that runs it."""
    endpoint = endpoint_of(entry.data, service)
    host = node_hosting(entry.data, service)
    return DeviceInfo(
        identifiers={(DOMAIN, f"{_base_id(entry)}_{service}")},
        name=f"{entry.title} {SERVICE_MODELS[service]}",
        manufacturer="Spark Control",
        model=SERVICE_MODELS[service],
        configuration_url=f"http://{endpoint.url_host}:{endpoint.port}"
        if CONF_ENDPOINTS in entry.data
        else None,
        via_device=(DOMAIN, f"{_base_id(entry)}_node_{host}"),
    )


def gateway_device(entry: SparkControlConfigEntry) -> DeviceInfo | None:
    """The add-on gateway once discovery linked it: a service device opening its URL."""
    url = entry.data.get(CONF_GATEWAY_URL)
    if not url:
        return None
    return DeviceInfo(
        identifiers={(DOMAIN, f"{_base_id(entry)}_gateway")},
        name=f"{entry.title} gateway",
        manufacturer="Spark Control",
        model="OpenAI-compatible gateway (add-on)",
        entry_type=DeviceEntryType.SERVICE,
        configuration_url=url,
        via_device=(DOMAIN, _base_id(entry)),
    )


class SparkControlEntity[CoordinatorT: DataUpdateCoordinator[Any]](CoordinatorEntity[CoordinatorT]):
    """An entity of one cluster entry; `key` makes its unique id within the entry."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: CoordinatorT, *, key: str, device_info: DeviceInfo) -> None:
        super().__init__(coordinator)
        entry = coordinator.config_entry
        assert entry is not None  # our coordinators always belong to an entry
        self._attr_unique_id = f"{_base_id(entry)}_{key}"
        self._attr_device_info = device_info
