"""Entities of the operations: download progress, cancel button, free disk space per node.

Downloads are vLLM's models, so their entities sit on the vLLM service device; free disk
space is a reading of each node.

The platforms (`sensor.py`, `button.py`) add them with the builders below; the update entity
of the software checkout has its own platform (`update.py`).
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.button import ButtonEntity
from homeassistant.components.sensor import SensorDeviceClass, SensorEntity, SensorStateClass
from homeassistant.const import PERCENTAGE, EntityCategory, UnitOfInformation

from .cluster_config import nodes_of
from .const import SERVICE_VLLM
from .coordinator import SparkControlConfigEntry
from .disk_space import SparkDiskSpaceCoordinator
from .download_control import DOWNLOAD_STATUSES, SparkDownloadCoordinator
from .entity import SparkControlEntity, node_device, service_device


def operations_sensors(entry: SparkControlConfigEntry) -> list[SensorEntity]:
    """The download progress sensor and each node's free disk space."""
    operations = entry.runtime_data.operations
    if operations is None:
        return []
    sensors: list[SensorEntity] = [
        SparkDownloadProgressSensor(operations.downloads),
        SparkDownloadStatusSensor(operations.downloads),
    ]
    sensors.extend(SparkDiskFreeSensor(operations.disks, node) for node in nodes_of(entry.data))
    return sensors


def operations_buttons(entry: SparkControlConfigEntry) -> list[ButtonEntity]:
    """The button that cancels a running download."""
    operations = entry.runtime_data.operations
    if operations is None:
        return []
    return [SparkCancelDownloadButton(operations.downloads)]


class SparkDownloadProgressSensor(SparkControlEntity[SparkDownloadCoordinator], SensorEntity):
    """Percent of the current (or last) download; bytes, rate and ETA as attributes."""

    _attr_translation_key = "download_progress"
    _attr_native_unit_of_measurement = PERCENTAGE
    _attr_state_class = SensorStateClass.MEASUREMENT

    def __init__(self, coordinator: SparkDownloadCoordinator) -> None:
        super().__init__(
            coordinator,
            key="download_progress",
            device_info=service_device(coordinator.config_entry, SERVICE_VLLM),
        )

    @property
    def native_value(self) -> int:
        """Percent done; 0 until a download has fetched its first byte (before any download
        too: the download status says idle, "unknown" would say nothing)."""
        progress = self.coordinator.data.progress
        return progress.percent if progress is not None else 0

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        state = self.coordinator.data
        progress = state.progress
        return {
            "repo_id": state.repo_id,
            "target": state.target,
            "nodes": list(state.nodes),
            "downloaded_bytes": progress.done if progress else None,
            "total_bytes": progress.total if progress else None,
            "rate_bytes_per_second": progress.rate if progress else None,
            "eta_seconds": progress.eta if progress else None,
        }


class SparkDownloadStatusSensor(SparkControlEntity[SparkDownloadCoordinator], SensorEntity):
    """Where the current (or last) download is: checking, downloading, finished, ..."""

    _attr_translation_key = "download_status"
    _attr_device_class = SensorDeviceClass.ENUM
    _attr_options = DOWNLOAD_STATUSES

    def __init__(self, coordinator: SparkDownloadCoordinator) -> None:
        super().__init__(
            coordinator,
            key="download_status",
            device_info=service_device(coordinator.config_entry, SERVICE_VLLM),
        )

    @property
    def native_value(self) -> str:
        return self.coordinator.data.status

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        state = self.coordinator.data
        return {"repo_id": state.repo_id, "error": state.error}


class SparkDiskFreeSensor(SparkControlEntity[SparkDiskSpaceCoordinator], SensorEntity):
    """Free space of a node's home filesystem (where the Hugging Face cache lives)."""

    _attr_translation_key = "disk_free"
    _attr_device_class = SensorDeviceClass.DATA_SIZE
    _attr_native_unit_of_measurement = UnitOfInformation.BYTES
    _attr_suggested_unit_of_measurement = UnitOfInformation.GIGABYTES
    _attr_suggested_display_precision = 1
    _attr_state_class = SensorStateClass.MEASUREMENT
    _attr_entity_category = EntityCategory.DIAGNOSTIC

    def __init__(self, coordinator: SparkDiskSpaceCoordinator, node: str) -> None:
        super().__init__(
            coordinator,
            key=f"{node}_disk_free",
            device_info=node_device(coordinator.config_entry, node),
        )
        self._node = node

    @property
    def available(self) -> bool:
        return super().available and self._node in (self.coordinator.data or {})

    @property
    def native_value(self) -> int | None:
        space = (self.coordinator.data or {}).get(self._node)
        return space.free if space is not None else None

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        space = (self.coordinator.data or {}).get(self._node)
        return {"disk_size_bytes": space.size if space is not None else None}


class SparkCancelDownloadButton(SparkControlEntity[SparkDownloadCoordinator], ButtonEntity):
    """Stops the running download (its partial files stay for a resume or removal)."""

    _attr_translation_key = "cancel_download"
    _attr_entity_category = EntityCategory.CONFIG

    def __init__(self, coordinator: SparkDownloadCoordinator) -> None:
        super().__init__(
            coordinator,
            key="cancel_download",
            device_info=service_device(coordinator.config_entry, SERVICE_VLLM),
        )

    @property
    def available(self) -> bool:
        return self.coordinator.data.running

    async def async_press(self) -> None:
        self.coordinator.cancel()
