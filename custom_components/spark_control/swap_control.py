"""Model swaps as Home Assistant sees them: progress for the sensor, events, notifications."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from homeassistant.components import persistent_notification
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError

from .const import (
    CONF_SWAP_TIMEOUT,
    DEFAULT_SWAP_TIMEOUT,
    DOMAIN,
    EVENT_SWAP_FAILED,
    EVENT_SWAP_FINISHED,
    EVENT_SWAP_STARTED,
    LOGGER,
)
from .errors import translate_error
from .host_key_issue import async_create_host_key_issue
from .sparklib.errors import AuthRejected, HostKeyChanged, SparkError, SwapFailed
from .sparklib.http_api import VllmState
from .sparklib.swap import SwapProgress, SwapResult

if TYPE_CHECKING:
    from .coordinator import SparkControlConfigEntry


class SwapControl:
    """Runs one swap at a time for a cluster entry and reports it to HA."""

    def __init__(self, hass: HomeAssistant, entry: SparkControlConfigEntry) -> None:
        self._hass = hass
        self._entry = entry
        self._listeners: list[Callable[[], None]] = []
        self._target: str | None = None  # set from the request until the swap ends
        self._ready_refresh: asyncio.Task[None] | None = None
        self.progress: SwapProgress | None = None

    @property
    def running(self) -> bool:
        """Whether a swap is under way (from the request until ready or failed)."""
        return self._target is not None

    @callback
    def async_add_listener(self, listener: Callable[[], None]) -> CALLBACK_TYPE:
        """Call `listener` on every progress step; returns the remover."""
        self._listeners.append(listener)

        @callback
        def remove() -> None:
            self._listeners.remove(listener)

        return remove

    def ensure_idle(self) -> None:
        """Refuse a second swap with an error that names the one in progress."""
        if self._target is not None:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="swap_in_progress",
                translation_placeholders={"model": self._target},
            )

    @callback
    def async_start(self, model: str) -> None:
        """Start a swap in the background (the select does not wait minutes for a load)."""
        self.ensure_idle()
        # Claimed now, not when the task first runs, so a second request is refused at once.
        self._target = model
        self._entry.async_create_background_task(
            self._hass, self._run_logged(model), f"{DOMAIN} swap to {model}"
        )

    async def _run_logged(self, model: str) -> None:
        try:
            await self._swap(model)
        except HomeAssistantError as error:
            # The event and the notification already told the user.
            LOGGER.debug("Background swap to %s ended: %s", model, error)
        finally:
            self._target = None

    async def async_swap(self, model: str) -> SwapResult:
        """Swap to a catalog model and wait for it to be served."""
        self.ensure_idle()
        self._target = model
        try:
            return await self._swap(model)
        finally:
            self._target = None

    async def _swap(self, model: str) -> SwapResult:
        runtime = self._entry.runtime_data
        try:
            target = runtime.catalog.catalog.get(model)
        except SparkError as error:
            raise translate_error(error) from error
        previous = runtime.status.data.vllm.models if runtime.status.data.vllm else []
        base = {"entry_id": self._entry.entry_id, "cluster": self._entry.title}
        self._hass.bus.async_fire(
            EVENT_SWAP_STARTED,
            {**base, "model": target.key, "repo_id": target.repo_id, "previous_models": previous},
        )
        timeout = 60.0 * self._entry.options.get(CONF_SWAP_TIMEOUT, DEFAULT_SWAP_TIMEOUT)
        self._ready_refresh = None
        try:
            result = await runtime.client.swap(
                target, timeout=timeout, on_progress=self._on_progress
            )
        except SwapFailed as error:
            self._report_failure(base, target.repo_id, error)
            raise translate_error(error) from error
        except SparkError as error:
            raise translate_error(error) from error
        # The event follows the poll that confirmed the new model (started on "ready").
        await self._confirming_poll()
        self._hass.bus.async_fire(
            EVENT_SWAP_FINISHED,
            {
                **base,
                "model": result.model,
                "repo_id": result.repo_id,
                "duration": round(result.duration, 3),
                "served_models": result.served_models,
            },
        )
        return result

    @callback
    def _on_progress(self, progress: SwapProgress) -> None:
        self.progress = progress
        if progress.status == "ready" and self._ready_refresh is None:
            self._show_ready(progress)
        for listener in list(self._listeners):
            listener()

    @callback
    def _show_ready(self, progress: SwapProgress) -> None:
        """Show the new model the moment the library reports "ready", then confirm by poll.

        "ready" means the startup line was logged and `/health` answered 200, so vLLM now
        serves the repo id it was launched with; waiting for the next poll (or for the
        library to fetch the model list and return) would only add round trips.
        """
        status = self._entry.runtime_data.status
        if status.data is not None and progress.repo_id:
            status.async_set_updated_data(
                replace(
                    status.data,
                    vllm=VllmState(
                        healthy=True, loading=False, models=[progress.repo_id], max_model_len=None
                    ),
                )
            )
        self._ready_refresh = self._entry.async_create_background_task(
            self._hass, status.async_refresh(), f"{DOMAIN} status poll after a swap"
        )

    async def _confirming_poll(self) -> None:
        """Wait for the poll started on "ready" (or poll now if there was none)."""
        refresh, self._ready_refresh = self._ready_refresh, None
        if refresh is not None:
            await refresh
        else:
            await self._entry.runtime_data.status.async_refresh()

    def _report_failure(self, base: dict[str, Any], repo_id: str, error: SwapFailed) -> None:
        cause = error.__cause__
        if isinstance(cause, HostKeyChanged):
            async_create_host_key_issue(self._hass, self._entry, cause)
        elif isinstance(cause, AuthRejected):
            self._hass.config_entries.async_schedule_reload(self._entry.entry_id)
        duration = self.progress.elapsed if self.progress is not None else 0.0
        self._hass.bus.async_fire(
            EVENT_SWAP_FAILED,
            {
                **base,
                "model": error.model,
                "repo_id": repo_id,
                "reason": error.reason,
                "duration": round(duration, 3),
                "last_lines": error.last_lines,
            },
        )
        tail = "\n".join(error.last_lines[-10:])
        persistent_notification.async_create(
            self._hass,
            f"Swap of **{self._entry.title}** to `{error.model}` failed: {error.reason}\n\n"
            f"```\n{tail}\n```",
            title="Spark Control: model swap failed",
            notification_id=f"{DOMAIN}_{self._entry.entry_id}_swap_failed",
        )
