"""Operations of a cluster entry: model downloads, node disk space, the spark-vllm-docker
update, the speech container."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.core import HomeAssistant

from .coordinator import SparkControlConfigEntry
from .disk_space import SparkDiskSpaceCoordinator
from .download_control import SparkDownloadCoordinator
from .software_update import SparkSoftwareCoordinator
from .sparklib.speech_container import load_build_context
from .speech_deploy import SparkSpeechContainerCoordinator


@dataclass(frozen=True, kw_only=True)
class OperationsData:
    """The coordinators behind the operations entities of one entry."""

    downloads: SparkDownloadCoordinator
    disks: SparkDiskSpaceCoordinator
    software: SparkSoftwareCoordinator
    speech: SparkSpeechContainerCoordinator


async def async_setup_operations(hass: HomeAssistant, entry: SparkControlConfigEntry) -> None:
    """Create the coordinators and read disks and the checkout once (before the platforms).

    A failed first read leaves those entities unavailable until the next poll; it never
    blocks the setup (the core of the integration works without them).
    """
    client = entry.runtime_data.client
    context = await hass.async_add_executor_job(load_build_context)
    operations = OperationsData(
        downloads=SparkDownloadCoordinator(hass, entry, client),
        disks=SparkDiskSpaceCoordinator(hass, entry, client),
        software=SparkSoftwareCoordinator(hass, entry, client),
        speech=SparkSpeechContainerCoordinator(hass, entry, client, context),
    )
    entry.runtime_data.operations = operations
    await operations.disks.async_refresh()
    await operations.software.async_refresh()
    await operations.speech.async_refresh()
