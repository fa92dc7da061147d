"""Base entity and the device tree (node → service) of Spark Control.

Only devices that carry entities exist: each node (its GPU sensors) and each service.
"""

from __future__ import annotations

from typing import Any

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity, DataUpdateCoordinator

from .cluster_config import endpoint_of, node_hosting
from .const import (
    CONF_ENDPOINTS,
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
SERVICE_MAKERS = {
    SERVICE_VLLM: "vLLM project",
    SERVICE_PARAKEET: "NVIDIA",
    SERVICE_MAGPIE: "NVIDIA",
}


def _base_id(entry: SparkControlConfigEntry) -> str:
    return entry.unique_id or entry.entry_id


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
    """One service (vLLM, Parakeet, Magpie), linked to the node that runs it."""
    endpoint = endpoint_of(entry.data, service)
    host = node_hosting(entry.data, service)
    return DeviceInfo(
        identifiers={(DOMAIN, f"{_base_id(entry)}_{service}")},
        name=f"{entry.title} {SERVICE_MODELS[service]}",
        manufacturer=SERVICE_MAKERS[service],
        model=SERVICE_MODELS[service],
        configuration_url=f"http://{endpoint.url_host}:{endpoint.port}"
        if CONF_ENDPOINTS in entry.data
        else None,
        via_device=(DOMAIN, f"{_base_id(entry)}_node_{host}"),
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
