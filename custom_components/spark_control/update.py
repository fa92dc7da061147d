"""Update entity: the spark-vllm-docker checkout on the head node against its upstream."""

from __future__ import annotations

from typing import Any

from homeassistant.components.update import UpdateEntity, UpdateEntityFeature
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .cluster_config import nodes_of
from .coordinator import SparkControlConfigEntry
from .entity import SparkControlEntity, node_device
from .software_update import SparkSoftwareCoordinator

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SparkControlConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the software update entity of the cluster."""
    operations = entry.runtime_data.operations
    if operations is not None:
        async_add_entities([SparkSoftwareUpdateEntity(operations.software)])


class SparkSoftwareUpdateEntity(SparkControlEntity[SparkSoftwareCoordinator], UpdateEntity):
    """Installed = local commit, latest = upstream commit, notes = the commits between."""

    _attr_translation_key = "spark_vllm_docker"
    _attr_title = "spark-vllm-docker"
    _attr_supported_features = (
        UpdateEntityFeature.INSTALL
        | UpdateEntityFeature.PROGRESS
        | UpdateEntityFeature.RELEASE_NOTES
    )

    def __init__(self, coordinator: SparkSoftwareCoordinator) -> None:
        super().__init__(
            coordinator,
            key="spark_vllm_docker_update",
            # The checkout lives on the head node.
            device_info=node_device(
                coordinator.config_entry, nodes_of(coordinator.config_entry.data)[0]
            ),
        )

    @property
    def available(self) -> bool:
        return super().available and self.coordinator.data.update is not None

    @property
    def installed_version(self) -> str | None:
        update = self.coordinator.data.update
        return update.installed[:7] if update is not None else None

    @property
    def latest_version(self) -> str | None:
        update = self.coordinator.data.update
        return update.latest[:7] if update is not None else None

    @property
    def release_summary(self) -> str | None:
        """ "N commits behind upstream", shown above the notes."""
        update = self.coordinator.data.update
        if update is None or update.behind == 0:
            return None
        noun = "commit" if update.behind == 1 else "commits"
        return f"{update.behind} {noun} behind upstream"

    @property
    def in_progress(self) -> bool:
        return self.coordinator.data.installing

    @property
    def update_percentage(self) -> int | None:
        state = self.coordinator.data
        return state.percentage if state.installing else None

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The build's last output lines (live while installing, kept after a failure)."""
        state = self.coordinator.data
        update = state.update
        return {
            "commits_behind": update.behind if update is not None else None,
            "log_tail": list(state.log_tail),
            "last_error": state.error,
        }

    async def async_release_notes(self) -> str | None:
        update = self.coordinator.data.update
        return update.release_notes if update is not None else None

    async def async_install(self, version: str | None, backup: bool, **kwargs: Any) -> None:
        """Pull and rebuild (refused while a swap runs); errors are translated."""
        await self.coordinator.async_install()
