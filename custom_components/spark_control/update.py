"""Update entities: the spark-vllm-docker checkout on the head node against its upstream, and
the Parakeet speech container against the build context this integration ships."""

from __future__ import annotations

from typing import Any, Protocol

from homeassistant.components.update import UpdateEntity, UpdateEntityFeature
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.translation import async_get_cached_translations

from .cluster_config import nodes_of
from .const import DOMAIN, SERVICE_PARAKEET
from .coordinator import SparkControlConfigEntry
from .entity import SparkControlEntity, node_device, service_device
from .software_update import SoftwareState, SparkSoftwareCoordinator
from .speech_deploy import SparkSpeechContainerCoordinator, SpeechContainerState

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SparkControlConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the software update entity of the cluster."""
    operations = entry.runtime_data.operations
    if operations is not None:
        async_add_entities(
            [
                SparkSoftwareUpdateEntity(operations.software),
                SparkSpeechContainerUpdateEntity(operations.speech),
            ]
        )


class _JobState(Protocol):
    """What the install of both update entities reports (a remote job's progress)."""

    @property
    def installing(self) -> bool: ...
    @property
    def percentage(self) -> int | None: ...


class _InstallProgress(UpdateEntity):
    """`in_progress` and `update_percentage` from the job state `_job()` returns."""

    def _job(self) -> _JobState:
        raise NotImplementedError

    @property
    def in_progress(self) -> bool:
        return self._job().installing

    @property
    def update_percentage(self) -> int | None:
        state = self._job()
        return state.percentage if state.installing else None


class SparkSoftwareUpdateEntity(
    SparkControlEntity[SparkSoftwareCoordinator], _InstallProgress, UpdateEntity
):
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

    def _job(self) -> SoftwareState:
        return self.coordinator.data

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


class SparkSpeechContainerUpdateEntity(
    SparkControlEntity[SparkSpeechContainerCoordinator], _InstallProgress, UpdateEntity
):
    """Installed = the context digest the running container was built from; latest = the
    digest of the context shipped with this integration; install = deploy it."""

    _attr_translation_key = "speech_container"
    _attr_title = "Parakeet speech container"
    _attr_supported_features = UpdateEntityFeature.INSTALL | UpdateEntityFeature.PROGRESS

    def __init__(self, coordinator: SparkSpeechContainerCoordinator) -> None:
        super().__init__(
            coordinator,
            key="speech_container_update",
            device_info=service_device(coordinator.config_entry, SERVICE_PARAKEET),
        )

    def _job(self) -> SpeechContainerState:
        return self.coordinator.data

    @property
    def installed_version(self) -> str | None:
        """The digest it was built from; else what runs in words ("Built by hand", "Not
        installed"), in HA's language since HA shows versions as they are. Never None: an
        unknown version would leave the entity without a state, and HA offers Install (the
        only way to deploy) only while an update is on offer."""
        state = self.coordinator.data
        if state.installed:
            return state.installed
        return (
            self._words(
                f"entity.update.{self.translation_key}.state_attributes.container.state."
                f"{state.container}"
            )
            or state.container
        )

    @property
    def latest_version(self) -> str:
        return self.coordinator.context.digest

    @property
    def release_summary(self) -> str | None:
        """What Install does to a container this integration did not deploy."""
        container = self.coordinator.data.container
        if container == "deployed":
            return None
        return self._words(f"exceptions.speech_container_summary_{container}.message")

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        state = self.coordinator.data
        return {
            "container": state.container,
            "log_tail": list(state.log_tail),
            "last_error": state.error,
        }

    def _words(self, key: str) -> str | None:
        """A text of the translations in HA's language (English where it has none)."""
        category = key.split(".", 1)[0]
        strings = async_get_cached_translations(
            self.hass, self.hass.config.language, category, DOMAIN
        )
        return strings.get(f"component.{DOMAIN}.{key}")

    async def async_install(self, version: str | None, backup: bool, **kwargs: Any) -> None:
        """Deploy the shipped context (build, replace the container, wait for health)."""
        await self.coordinator.async_deploy()
