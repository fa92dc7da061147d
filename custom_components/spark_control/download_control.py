"""Model downloads as Home Assistant sees them: a pushed coordinator, events and fix flows.

One download at a time per cluster. The disk is checked on every target node before a byte
moves; progress (percent, bytes, rate, ETA) is pushed to the download sensor; events mark
the start, the end and a failure. A finished download offers itself for the catalog through
a repair issue whose fix flow is the pre-filled form; a failed or cancelled one raises an
issue offering to resume it or to remove its partial files. The catalog never holds a model
the user did not confirm.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, replace
from typing import Literal

from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator

from .const import (
    DOMAIN,
    EVENT_DOWNLOAD_FAILED,
    EVENT_DOWNLOAD_FINISHED,
    EVENT_DOWNLOAD_STARTED,
    LOGGER,
)
from .coordinator import SparkControlConfigEntry
from .errors import action_error
from .sparklib.cluster import ClusterClient
from .sparklib.downloads import (
    DownloadCancelled,
    DownloadProgress,
    InsufficientDisk,
    ModelDownload,
)
from .sparklib.errors import SparkError

type DownloadTarget = Literal["head", "all"]
DOWNLOAD_TARGETS: tuple[DownloadTarget, ...] = ("head", "all")
type DownloadStatus = Literal["idle", "checking", "downloading", "finished", "failed", "cancelled"]
DOWNLOAD_STATUSES: list[str] = [
    "idle",
    "checking",
    "downloading",
    "finished",
    "failed",
    "cancelled",
]


@dataclass(frozen=True, kw_only=True)
class DownloadState:
    """The current (or last) download of the cluster."""

    status: DownloadStatus = "idle"
    repo_id: str | None = None
    target: DownloadTarget | None = None
    nodes: tuple[str, ...] = ()
    progress: DownloadProgress | None = None
    error: str | None = None

    @property
    def running(self) -> bool:
        return self.status in ("checking", "downloading")


def _issue_suffix(repo_id: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", repo_id.lower()).strip("_")


def downloaded_issue_id(entry_id: str, repo_id: str) -> str:
    """The "add it to the catalog" offer of a finished download."""
    return f"model_downloaded_{entry_id}_{_issue_suffix(repo_id)}"


def failed_issue_id(entry_id: str, repo_id: str) -> str:
    """The "resume or remove the partial files" offer of a failed download."""
    return f"download_failed_{entry_id}_{_issue_suffix(repo_id)}"


class SparkDownloadCoordinator(DataUpdateCoordinator[DownloadState]):
    """Runs one download at a time for a cluster entry and pushes its progress."""

    config_entry: SparkControlConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: SparkControlConfigEntry, client: ClusterClient
    ) -> None:
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{entry.title} model download",
            update_interval=None,  # pushed by the download's own output
        )
        self.client = client
        self.data = DownloadState()
        self._download: ModelDownload | None = None
        self._task: asyncio.Task[None] | None = None
        self._cancel_requested = False

    async def _async_update_data(self) -> DownloadState:
        return self.data

    def _fire(self, event: str, state: DownloadState, **details: object) -> None:
        """Fire a download event with what every one of them carries."""
        self.hass.bus.async_fire(
            event,
            {
                "entry_id": self.config_entry.entry_id,
                "cluster": self.config_entry.title,
                "repo_id": state.repo_id,
                "target": state.target,
                "nodes": list(state.nodes),
                **details,
            },
        )

    def ensure_idle(self) -> None:
        """Refuse a second download while one runs, naming it."""
        if self.data.running:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="download_in_progress",
                translation_placeholders={"repo_id": self.data.repo_id or ""},
            )

    def prepare(self, repo_id: str, target: DownloadTarget) -> ModelDownload:
        """A download of `repo_id` to the target's nodes (not started; the repo id is
        validated here, so a bad one raises InvalidInput before any command is sent)."""
        return self.client.model_download(repo_id, all_nodes=target == "all")

    @callback
    def async_start(
        self, repo_id: str, target: DownloadTarget, *, checked: ModelDownload | None = None
    ) -> asyncio.Task[None]:
        """Check the disks and download in the background; returns the task to await.

        `checked` is a download of `repo_id` whose `check_space()` the caller has just run
        (the catalog flow shows its outcome in the form): it is not checked twice.
        """
        self.ensure_idle()
        try:
            download = checked or self.prepare(repo_id, target)
        except SparkError as error:
            raise action_error(self.hass, self.config_entry, error) from error
        self._download = download
        self._cancel_requested = False
        nodes = tuple(part.node.name for part in download.parts)
        self.async_set_updated_data(
            DownloadState(status="checking", repo_id=download.repo_id, target=target, nodes=nodes)
        )
        self._task = self.config_entry.async_create_background_task(
            self.hass,
            self._run(download, checked=checked is not None),
            f"{DOMAIN} download of {download.repo_id}",
        )
        return self._task

    def cancel(self) -> None:
        """Stop the running download (its partial files stay for a resume or removal)."""
        if not self.data.running or self._download is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="no_download_running"
            )
        self._cancel_requested = True
        self._download.cancel()
        if self._task is not None and self.data.status == "checking":
            self._task.cancel()

    async def async_remove(self, repo_id: str, target: DownloadTarget) -> None:
        """Delete a model (complete or partial) from the target nodes' caches."""
        if self.data.running and self.data.repo_id == repo_id:
            self.ensure_idle()
        try:
            await self.client.model_download(repo_id, all_nodes=target == "all").cleanup()
        except SparkError as error:
            raise action_error(self.hass, self.config_entry, error) from error
        ir.async_delete_issue(
            self.hass, DOMAIN, failed_issue_id(self.config_entry.entry_id, repo_id)
        )
        await self._refresh_disks()

    async def _refresh_disks(self) -> None:
        operations = self.config_entry.runtime_data.operations
        if operations is not None:
            await operations.disks.async_refresh()

    async def _run(self, download: ModelDownload, *, checked: bool) -> None:
        state = self.data
        started = time.monotonic()
        try:
            if not checked:
                await download.check_space()
        except InsufficientDisk as error:
            self._fail(state, "insufficient_disk", str(error), download)
            return
        except asyncio.CancelledError:
            if not self._cancel_requested:
                raise  # the entry is unloading
            self._fail(state, "cancelled", "cancelled before the download began", download)
            return
        except SparkError as error:
            self._fail(state, "error", str(error), download)
            return
        state = replace(state, status="downloading")
        self.async_set_updated_data(state)
        needed = sum(part.needed for part in download.parts)
        self._fire(
            EVENT_DOWNLOAD_STARTED, state, bytes_needed=needed, size_known=download.size_known
        )
        last_percent = -1

        @callback
        def on_progress(progress: DownloadProgress) -> None:
            nonlocal last_percent
            # A redraw every 0.1 s is too chatty for the state machine: write per percent.
            if progress.percent != last_percent:
                last_percent = progress.percent
                self.async_set_updated_data(replace(state, progress=progress))

        try:
            snapshots = await download.run(on_progress)
        except DownloadCancelled:
            self._fail(state, "cancelled", "cancelled", download)
            await self._refresh_disks()
            return
        except SparkError as error:
            self._fail(state, "error", str(error), download)
            await self._refresh_disks()
            return
        finally:
            self._download = None
        progress = download.progress
        state = replace(state, status="finished", progress=progress)
        self.async_set_updated_data(state)
        self._fire(
            EVENT_DOWNLOAD_FINISHED,
            state,
            bytes=progress.total if progress is not None else 0,
            duration=round(time.monotonic() - started, 3),
            snapshots=snapshots,
        )
        ir.async_delete_issue(
            self.hass, DOMAIN, failed_issue_id(self.config_entry.entry_id, download.repo_id)
        )
        self._offer_catalog_entry(download.repo_id, state.target or "head")
        await self._refresh_disks()

    def _fail(self, state: DownloadState, reason: str, error: str, download: ModelDownload) -> None:
        self._download = None
        status: DownloadStatus = "cancelled" if reason == "cancelled" else "failed"
        state = replace(state, status=status, progress=download.progress, error=error)
        self.async_set_updated_data(state)
        self._fire(EVENT_DOWNLOAD_FAILED, state, reason=reason, error=error)
        if download.progress is not None:
            # Bytes reached a disk: offer to resume the download or to free the space.
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                failed_issue_id(self.config_entry.entry_id, download.repo_id),
                is_fixable=True,
                is_persistent=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key="download_failed",
                translation_placeholders={
                    "repo_id": download.repo_id,
                    "cluster": self.config_entry.title,
                    "error": error,
                },
                data={
                    "entry_id": self.config_entry.entry_id,
                    "repo_id": download.repo_id,
                    "target": state.target or "head",
                },
            )

    def _offer_catalog_entry(self, repo_id: str, target: DownloadTarget) -> None:
        if self.config_entry.runtime_data.catalog.catalog.find_by_repo_id(repo_id) is not None:
            return  # already in the catalog: nothing to offer
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            downloaded_issue_id(self.config_entry.entry_id, repo_id),
            is_fixable=True,
            is_persistent=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key="model_downloaded",
            translation_placeholders={"repo_id": repo_id, "cluster": self.config_entry.title},
            data={"entry_id": self.config_entry.entry_id, "repo_id": repo_id, "target": target},
        )
