"""The Parakeet speech container from Home Assistant: installed version, deploy, remove.

The installed version is the build-context digest the running container's image is labelled
with; the latest is the digest of the context this integration ships. Deploying ships the
context over SFTP, builds it, replaces the container (memory cap, no swap: the options of
`docker-run.args`) and waits for `/health`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Literal

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .cluster_config import endpoint_of
from .const import (
    DOMAIN,
    EVENT_SPEECH_CONTAINER_DEPLOY_FAILED,
    EVENT_SPEECH_CONTAINER_DEPLOY_FINISHED,
    EVENT_SPEECH_CONTAINER_DEPLOY_STARTED,
    EVENT_SPEECH_CONTAINER_REMOVED,
    LOGGER,
    SERVICE_PARAKEET,
)
from .coordinator import SparkControlConfigEntry
from .errors import action_error
from .job_output import JobOutput, build_step_percentage
from .sparklib.cluster import ClusterClient
from .sparklib.errors import NotHealthyInTime, ServiceUnreachable, SparkError
from .sparklib.speech_container import BuildContext

VERSION_CHECK_INTERVAL = timedelta(minutes=30)
HEALTH_TIMEOUT = 20 * 60  # NeMo models download and load on the first start

# Deployed by this integration (labelled with its context digest), built by hand, or none.
type ContainerKind = Literal["deployed", "built_by_hand", "missing"]


@dataclass(frozen=True, kw_only=True)
class SpeechContainerState:
    """What runs on the speech node, and the deploy under way (if any)."""

    installed: str | None = None  # context digest; "" not built by us; None no container
    installing: bool = False
    percentage: int | None = None
    log_tail: tuple[str, ...] = ()
    error: str | None = None

    @property
    def container(self) -> ContainerKind:
        """What runs on the speech node, as the update entity's `container` attribute says."""
        if self.installed is None:
            return "missing"
        return "deployed" if self.installed else "built_by_hand"


def deploy_percentage(line: str, current: int | None) -> int | None:
    """Upload 5 %, build steps 5-80 % by BuildKit's step count, replacing the container 85 %
    (then 90 % while waiting for health, set by the deploy itself)."""
    if line.startswith("Uploading "):
        return 5
    if (step := build_step_percentage(line, 5, 80)) is not None:
        return step
    return 85 if line.startswith(("Removing ", "Starting ")) else None


class SparkSpeechContainerCoordinator(DataUpdateCoordinator[SpeechContainerState]):
    """Reads the installed version every 30 minutes; deploys and removes on request."""

    config_entry: SparkControlConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: SparkControlConfigEntry,
        client: ClusterClient,
        context: BuildContext,
    ) -> None:
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{entry.title} speech container",
            update_interval=VERSION_CHECK_INTERVAL,
        )
        self.client = client
        self.context = context

    async def _async_update_data(self) -> SpeechContainerState:
        previous = self.data or SpeechContainerState()
        if previous.installing:
            return previous
        try:
            installed = await self.client.speech_container_version()
        except SparkError as error:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="communication_error",
                translation_placeholders={"error": str(error)},
            ) from error
        return replace(previous, installed=installed)

    def _details(self) -> dict[str, object]:
        return {
            "entry_id": self.config_entry.entry_id,
            "cluster": self.config_entry.title,
            "node": endpoint_of(self.config_entry.data, SERVICE_PARAKEET).host,
            "installed": self.data.installed if self.data else None,
            "version": self.context.digest,
        }

    def _ensure_idle(self) -> None:
        if self.data is not None and self.data.installing:
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="speech_deploy_in_progress"
            )

    async def async_deploy(self) -> None:
        """Ship, build, run and wait for health; the old container runs until the build is
        done (a failed build leaves it alone)."""
        self._ensure_idle()
        details = self._details()
        installed = self.data.installed if self.data else None
        output = JobOutput(deploy_percentage)
        self.async_set_updated_data(
            SpeechContainerState(installed=installed, installing=True, percentage=0)
        )
        self.hass.bus.async_fire(EVENT_SPEECH_CONTAINER_DEPLOY_STARTED, details)

        def show() -> None:
            self.async_set_updated_data(
                SpeechContainerState(
                    installed=installed,
                    installing=True,
                    percentage=output.percentage,
                    log_tail=output.tail,
                )
            )

        try:
            async for line in self.client.deploy_speech_container(self.context):
                if output.add(line):
                    show()
            output.add("Waiting for /health")
            output.percentage = 90
            show()
            await self._wait_healthy()
        except SparkError as error:
            lines = output.failure_lines(error)
            self.async_set_updated_data(
                SpeechContainerState(installed=installed, log_tail=tuple(lines), error=str(error))
            )
            self.hass.bus.async_fire(
                EVENT_SPEECH_CONTAINER_DEPLOY_FAILED,
                {**details, "error": str(error), "last_lines": lines},
            )
            await self.async_request_refresh()
            raise action_error(self.hass, self.config_entry, error) from error
        output.add("Healthy")
        self.async_set_updated_data(
            SpeechContainerState(installed=self.context.digest, log_tail=output.tail)
        )
        await self.async_refresh()
        self.hass.bus.async_fire(EVENT_SPEECH_CONTAINER_DEPLOY_FINISHED, details)

    async def _wait_healthy(self) -> None:
        api = self.client.api
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT):
                while True:
                    try:
                        if await api.parakeet_healthy():
                            return
                    except ServiceUnreachable:
                        pass  # still starting
                    await asyncio.sleep(1.0)
        except TimeoutError as err:
            raise NotHealthyInTime("Parakeet", HEALTH_TIMEOUT) from err

    async def async_remove(self) -> None:
        """Stop and remove the container (the image stays for a later deploy)."""
        self._ensure_idle()
        try:
            await self.client.remove_speech_container()
        except SparkError as error:
            raise action_error(self.hass, self.config_entry, error) from error
        self.hass.bus.async_fire(EVENT_SPEECH_CONTAINER_REMOVED, self._details())
        await self.async_refresh()
        runtime = self.config_entry.runtime_data
        await runtime.metrics.async_refresh_containers()
        await runtime.status.async_request_refresh()
