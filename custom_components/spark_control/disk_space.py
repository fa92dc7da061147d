"""Free disk space of every node (where models are downloaded), polled cheaply with `df`."""

from __future__ import annotations

from datetime import timedelta

from homeassistant.core import HomeAssistant
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .const import DOMAIN, LOGGER
from .coordinator import SparkControlConfigEntry
from .sparklib.cluster import ClusterClient
from .sparklib.downloads import DiskSpace
from .sparklib.errors import SparkError

DISK_SPACE_INTERVAL = timedelta(minutes=5)


class SparkDiskSpaceCoordinator(DataUpdateCoordinator[dict[str, DiskSpace]]):
    """Node key → its home filesystem; a node that does not answer is left out."""

    config_entry: SparkControlConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: SparkControlConfigEntry, client: ClusterClient
    ) -> None:
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{entry.title} disk space",
            update_interval=DISK_SPACE_INTERVAL,
        )
        self.client = client

    async def _async_update_data(self) -> dict[str, DiskSpace]:
        try:
            return await self.client.disk_space()
        except SparkError as error:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="communication_error",
                translation_placeholders={"error": str(error)},
            ) from error
