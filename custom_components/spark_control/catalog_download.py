"""The catalog flow's download steps: a model whose weights are not on its nodes yet is
downloaded before it enters the catalog (as HA's Ollama integration pulls a model in its
subentry flow).

After a model form validates, the flow asks each node the model runs on (the head for solo,
every node for cluster) what `hf download --dry-run` would still fetch. Nothing to fetch: the
subentry is created at once. Otherwise the *download* step shows the size and the free space
(an insufficient disk is an error in that form) and offers to download now or to add the
model as it is. The download runs in the cluster's download coordinator, so its sensors, events,
cancel button and repair issues are the same as the `download_model` action's; the flow shows
its percentage while it is open and creates the subentry when it finishes. Closing the dialog
does not stop the download: the finished download then offers itself through the repair issue.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState, ConfigSubentryFlow, SubentryFlowResult
from homeassistant.core import CALLBACK_TYPE, callback
from homeassistant.helpers import issue_registry as ir, selector

from .const import DOMAIN
from .coordinator import SparkControlConfigEntry
from .download_control import (
    DownloadState,
    DownloadTarget,
    SparkDownloadCoordinator,
    downloaded_issue_id,
)
from .errors import async_handle_key_error
from .sparklib.catalog import ModelEntry
from .sparklib.downloads import InsufficientDisk, ModelDownload
from .sparklib.errors import CommandFailed, SparkError

DOWNLOAD_SCHEMA = vol.Schema({vol.Required("download", default=True): selector.BooleanSelector()})


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingModel:
    """A validated catalog change waiting for its model's weights."""

    title: str
    data: dict[str, Any]
    key: str
    repo_id: str
    target: DownloadTarget

    @classmethod
    def of(cls, model: ModelEntry, data: dict[str, Any]) -> PendingModel:
        """The subentry `data` of `model`, whose weights go where the model runs."""
        return cls(
            title=model.name,
            data=data,
            key=model.key,
            repo_id=model.repo_id,
            target="all" if model.mode == "cluster" else "head",
        )


class WeightsCheckFailed(Exception):
    """The nodes could not say what the download needs; `reason` is for the form."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _reason(error: SparkError) -> str:
    """What to show of a failed check: the tool's own first line, not the whole command."""
    if isinstance(error, CommandFailed):
        lines = [line.strip() for line in error.stderr.splitlines() if line.strip()]
        if lines:
            return lines[0][:300]
    return str(error)[:300]


def _gigabytes(size: int) -> str:
    return f"{size / 1e9:.1f} GB"


class CatalogDownloadSteps(ConfigSubentryFlow):
    """The download steps a catalog flow goes through before it creates a model's subentry."""

    _pending: PendingModel | None = None
    _needed: dict[str, int] | None = None  # node → bytes still to fetch (last check)
    _complete = False  # the last check found nothing to fetch on any node
    _size_known = True  # the last check knew every file's size (else `_needed` is a floor)
    _free: dict[str, int] | None = None
    _waiting: asyncio.Task[None] | None = None
    _outcome: DownloadState | None = None
    _stop_following: CALLBACK_TYPE | None = None

    def _downloads(self) -> SparkDownloadCoordinator | None:
        entry: SparkControlConfigEntry = self._get_entry()
        if entry.state is not ConfigEntryState.LOADED or entry.runtime_data.operations is None:
            return None
        return entry.runtime_data.operations.downloads

    async def _check(
        self, downloads: SparkDownloadCoordinator, pending: PendingModel
    ) -> ModelDownload:
        """Run the dry run and disk check on the target's nodes; InsufficientDisk passes
        through, any other failure becomes WeightsCheckFailed."""
        try:
            download = downloads.prepare(pending.repo_id, pending.target)
            spaces = await download.check_space()
        except InsufficientDisk:
            self._checked(download)
            raise
        except SparkError as error:
            async_handle_key_error(self.hass, self._get_entry(), error)
            raise WeightsCheckFailed(_reason(error)) from error
        self._checked(download)
        self._free = {node: space.free for node, space in spaces.items()}
        return download

    def _checked(self, download: ModelDownload) -> None:
        self._needed = {part.node.name: part.needed for part in download.parts}
        self._complete, self._size_known = download.complete, download.size_known

    async def async_weights_step(self, pending: PendingModel) -> SubentryFlowResult:
        """Create the subentry if the weights are on every node the model runs on, else show
        the download step. A check that fails raises WeightsCheckFailed for the model form."""
        downloads = self._downloads()
        if downloads is None:
            return self.async_abort(reason="cluster_not_loaded")
        self._pending = pending
        try:
            await self._check(downloads, pending)
        except InsufficientDisk as error:
            return self._download_form({"base": "insufficient_disk"}, str(error))
        if self._complete:
            return self._save()
        return self._download_form({}, "")

    def _download_form(self, errors: dict[str, str], error: str) -> SubentryFlowResult:
        pending = self._pending
        assert pending is not None
        needed = self._needed or {}
        free = self._free or {}
        return self.async_show_form(
            step_id="download",
            data_schema=DOWNLOAD_SCHEMA,
            errors=errors,
            description_placeholders={
                "repo_id": pending.repo_id,
                # A floor when the hub did not know every file's size.
                "size": ("" if self._size_known else "≥ ")
                + _gigabytes(max(needed.values(), default=0)),
                "nodes": ", ".join(needed),
                "free": ", ".join(f"{node}: {_gigabytes(size)}" for node, size in free.items())
                or "-",
                "error": error,
            },
        )

    async def async_step_download(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Download now (checked again: the disk may have changed) or add the model as is."""
        pending = self._pending
        downloads = self._downloads()
        if pending is None or downloads is None:
            return self.async_abort(reason="cluster_not_loaded")
        if user_input is None:
            return self._download_form({}, "")
        if not user_input["download"]:
            return self._save()  # vLLM fetches the weights when it first loads the model
        if downloads.data.running:
            return self._download_form(
                {"base": "download_in_progress"}, downloads.data.repo_id or ""
            )
        try:
            download = await self._check(downloads, pending)
        except InsufficientDisk as error:
            return self._download_form({"base": "insufficient_disk"}, str(error))
        except WeightsCheckFailed as failed:
            return self._download_form({"base": "weights_check_failed"}, failed.reason)
        if self._complete:
            return self._save()  # fetched meanwhile (another flow or the action)
        task = downloads.async_start(pending.repo_id, pending.target, checked=download)
        self._waiting = self.hass.async_create_task(
            self._wait_for(downloads, task), f"{DOMAIN} catalog flow waiting for {pending.repo_id}"
        )
        self._stop_following = downloads.async_add_listener(self._follow_progress)
        return await self.async_step_downloading()

    async def _wait_for(
        self, downloads: SparkDownloadCoordinator, task: asyncio.Task[None]
    ) -> None:
        # Shielded: closing the dialog cancels this wait, never the download itself.
        await asyncio.shield(task)
        self._outcome = downloads.data

    @callback
    def _follow_progress(self) -> None:
        downloads = self._downloads()
        if downloads is not None and (progress := downloads.data.progress) is not None:
            self.async_update_progress(progress.percent / 100)

    async def async_step_downloading(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Show the running download until it ends."""
        pending = self._pending
        waiting = self._waiting
        assert pending is not None
        assert waiting is not None
        if not waiting.done():
            return self.async_show_progress(
                step_id="downloading",
                progress_action="download",
                progress_task=waiting,
                description_placeholders={
                    "repo_id": pending.repo_id,
                    "nodes": ", ".join(self._needed or {}),
                },
            )
        self._unfollow()
        finished = self._outcome is not None and self._outcome.status == "finished"
        return self.async_show_progress_done(next_step_id="finish" if finished else "failed")

    async def async_step_finish(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """The weights are on the nodes: add the model."""
        pending = self._pending
        assert pending is not None
        # The coordinator offered the finished download for the catalog; this flow adds it.
        ir.async_delete_issue(
            self.hass, DOMAIN, downloaded_issue_id(self._get_entry().entry_id, pending.repo_id)
        )
        return self._save()

    async def async_step_failed(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """The download failed or was cancelled; its repair issue offers resume or removal."""
        outcome = self._outcome
        return self.async_abort(
            reason="download_failed",
            description_placeholders={
                "repo_id": self._pending.repo_id if self._pending else "",
                "error": outcome.error or "" if outcome is not None else "",
            },
        )

    def _save(self) -> SubentryFlowResult:
        pending = self._pending
        assert pending is not None
        return self.async_create_entry(
            title=pending.title, data=pending.data, unique_id=pending.key
        )

    def _unfollow(self) -> None:
        if self._stop_following is not None:
            self._stop_following()
            self._stop_following = None

    @callback
    def async_remove(self) -> None:
        """The flow ends or the dialog closed: stop following (the download goes on)."""
        self._unfollow()
