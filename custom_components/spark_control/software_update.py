"""The spark-vllm-docker checkout on the head node: periodic update checks and the install.

The check (`git fetch` + a few local git reads) is cheap and runs every few hours; the
install pulls and runs `./build-and-copy.sh -c`, pushing an estimated percentage and the
last output lines to the update entity while it runs. It is refused while a swap runs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .const import (
    DOMAIN,
    EVENT_SOFTWARE_UPDATE_FAILED,
    EVENT_SOFTWARE_UPDATE_FINISHED,
    EVENT_SOFTWARE_UPDATE_STARTED,
    LOGGER,
)
from .coordinator import SparkControlConfigEntry
from .errors import action_error
from .job_output import JobOutput, build_step_percentage
from .sparklib.cluster import ClusterClient
from .sparklib.errors import SparkError
from .sparklib.updates import SoftwareUpdate

UPDATE_CHECK_INTERVAL = timedelta(hours=6)


@dataclass(frozen=True, kw_only=True)
class SoftwareState:
    """The last check, and the install under way (if any)."""

    update: SoftwareUpdate | None = None
    installing: bool = False
    percentage: int | None = None
    log_tail: tuple[str, ...] = ()
    error: str | None = None


def install_percentage(line: str, current: int | None) -> int | None:
    """Estimate how far `git pull && ./build-and-copy.sh -c` is from one output line.

    Pull: 5 %; build steps: 5-80 % by BuildKit's step count; copying the image to the
    other nodes: 85 %, loaded there: 95 %; `Done.`: 100 %. Other lines say nothing (None).
    """
    if line.startswith(("Updating ", "Fast-forward", "Already up to date")):
        return 5
    if (step := build_step_percentage(line, 5, 80)) is not None:
        return step
    if line.startswith("Copying "):
        return 85
    if line.startswith("Loaded image"):
        return 95
    return 100 if line.strip() == "Done." else None


class SparkSoftwareCoordinator(DataUpdateCoordinator[SoftwareState]):
    """Checks the checkout every few hours; runs the install on request."""

    config_entry: SparkControlConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: SparkControlConfigEntry, client: ClusterClient
    ) -> None:
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{entry.title} spark-vllm-docker updates",
            update_interval=UPDATE_CHECK_INTERVAL,
        )
        self.client = client

    async def _async_update_data(self) -> SoftwareState:
        previous = self.data or SoftwareState()
        if previous.installing:
            return previous  # the install re-checks when it ends
        try:
            update = await self.client.check_updates()
        except SparkError as error:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="update_check_failed",
                translation_placeholders={"error": str(error)},
            ) from error
        return replace(previous, update=update)

    def _base(self) -> dict[str, str]:
        return {"entry_id": self.config_entry.entry_id, "cluster": self.config_entry.title}

    async def async_install(self) -> None:
        """Pull and rebuild; refused while a swap or another install runs."""
        self.config_entry.runtime_data.swap.ensure_idle()
        state = self.data or SoftwareState()
        if state.installing:
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="update_in_progress"
            )
        update = state.update
        details = {
            **self._base(),
            "installed": update.installed if update else None,
            "latest": update.latest if update else None,
            "behind": update.behind if update else None,
        }
        self.async_set_updated_data(SoftwareState(update=update, installing=True, percentage=0))
        self.hass.bus.async_fire(EVENT_SOFTWARE_UPDATE_STARTED, details)
        output = JobOutput(install_percentage)
        try:
            async for line in self.client.apply_update():
                if output.add(line):
                    self.async_set_updated_data(
                        SoftwareState(
                            update=update,
                            installing=True,
                            percentage=output.percentage,
                            log_tail=output.tail,
                        )
                    )
        except SparkError as error:
            lines = output.failure_lines(error)
            self.async_set_updated_data(
                SoftwareState(update=update, log_tail=tuple(lines), error=str(error))
            )
            self.hass.bus.async_fire(
                EVENT_SOFTWARE_UPDATE_FAILED,
                {**details, "error": str(error), "last_lines": lines},
            )
            raise action_error(self.hass, self.config_entry, error) from error
        self.async_set_updated_data(SoftwareState(update=update, log_tail=output.tail))
        await self.async_refresh()
        after = self.data.update if self.data else None
        self.hass.bus.async_fire(
            EVENT_SOFTWARE_UPDATE_FINISHED,
            {**details, "installed": after.installed if after else None},
        )
