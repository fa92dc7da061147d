"""Model swaps as Home Assistant sees them: a pushed coordinator, events, notifications.

The swap state has one home: the library's `SwapRunner` (its claim is the busy flag, its
progress the latest report). `SparkSwapCoordinator` pushes a snapshot of it to the entities
on every report, the way WLED pushes its websocket updates through its coordinator; nothing
is polled and no other object keeps a copy.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator

from .const import (
    CONF_SWAP_FALLBACK,
    CONF_SWAP_TIMEOUT,
    DEFAULT_SWAP_FALLBACK,
    DEFAULT_SWAP_TIMEOUT,
    DOMAIN,
    EVENT_SWAP_FAILED,
    EVENT_SWAP_FELL_BACK,
    EVENT_SWAP_FINISHED,
    EVENT_SWAP_STARTED,
    LOGGER,
)
from .entity import logbook_entity
from .errors import (
    action_error,
    async_handle_key_error,
    async_swap_failure_reason,
    spark_errors,
    translate_error,
)
from .sparklib.catalog import ModelEntry
from .sparklib.cluster import ClusterClient
from .sparklib.errors import AuthRejected, HostKeyChanged, SparkError, SwapFailed
from .sparklib.swap import SwapClaim, SwapProgress, SwapResult
from .swap_notifications import async_dismiss_all, async_notify

if TYPE_CHECKING:
    from .coordinator import SparkControlConfigEntry


@dataclass(frozen=True, kw_only=True)
class SwapState:
    """A snapshot of the cluster's swap runner."""

    target: str | None  # catalog key of the swap under way (the runner's claim); None: idle
    progress: SwapProgress | None  # the running swap's latest report, else the last swap's
    # The claim under way (re)starts vLLM rather than changing its model: it served nothing
    # when the claim was taken, or it served the target itself.
    starting: bool = False

    @property
    def running(self) -> bool:
        """Whether a swap is under way (from the request until its events are fired)."""
        return self.target is not None


class SparkSwapCoordinator(DataUpdateCoordinator[SwapState]):
    """Runs one swap at a time for a cluster entry and pushes its progress to the entities."""

    config_entry: SparkControlConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: SparkControlConfigEntry, client: ClusterClient
    ) -> None:
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{entry.title} swap",
            update_interval=None,  # pushed by the runner's reports, never polled
        )
        self.client = client
        self._last_good: str | None = None  # the last model a swap of this entry loaded
        self._starting = False  # whether the claim under way (re)starts vLLM (SwapState)
        self.data = self._snapshot()

    def _snapshot(self) -> SwapState:
        runner = self.client.swapper
        return SwapState(
            target=runner.target,
            progress=runner.progress,
            starting=runner.busy and self._starting,
        )

    async def _async_update_data(self) -> SwapState:
        return self._snapshot()

    @callback
    def _push(self) -> None:
        self.async_set_updated_data(self._snapshot())

    @property
    def running(self) -> bool:
        """Whether a swap is under way."""
        return self.client.swapper.busy

    @property
    def progress(self) -> SwapProgress | None:
        """The running swap's latest report, else the last swap's (None before any)."""
        return self.client.swapper.progress

    async def async_wait_idle(self) -> None:
        """Return once no swap runs (at once if none does), or after the longest a swap and
        its fallback can take: the swap timeout twice."""
        if not self.running:
            return
        idle = asyncio.Event()

        @callback
        def check() -> None:
            if not self.running:
                idle.set()

        unsubscribe = self.async_add_listener(check)  # the claim's release is pushed
        timeout = 2 * 60.0 * self.config_entry.options.get(CONF_SWAP_TIMEOUT, DEFAULT_SWAP_TIMEOUT)
        try:
            async with asyncio.timeout(timeout):
                await idle.wait()
        except TimeoutError:
            LOGGER.debug("%s: a swap still runs after %.0f s", self.config_entry.title, timeout)
        finally:
            unsubscribe()

    def ensure_idle(self) -> None:
        """Refuse work that would break a running swap, naming the model it goes to."""
        if (target := self.client.swapper.target) is not None:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="swap_in_progress",
                translation_placeholders={"model": self._label(target)},
            )

    def relaunch_model(self) -> str | None:
        """The catalog model a start or restart of vLLM loads: the one it serves, else the one
        it served last (kept across restarts of Home Assistant by the model select), else the
        last one a swap loaded; None when none is known."""
        runtime = self.config_entry.runtime_data
        catalog = runtime.catalog.catalog
        vllm = runtime.status.data.vllm if runtime.status.data else None
        for repo_id in vllm.models if vllm else []:
            if (model := catalog.find_by_repo_id(repo_id)) is not None:
                return model.key
        for key in (runtime.status.last_served_key, self._last_good):
            if key is not None and key in catalog:
                return key
        return None

    def _known_relaunch_model(self) -> str:
        """`relaunch_model`, or a translated error asking the user to choose one."""
        self.ensure_idle()  # a swap under way is the clearer refusal
        if (model := self.relaunch_model()) is None:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="vllm_model_unknown",
                translation_placeholders={"cluster": self.config_entry.title},
            )
        return model

    @callback
    def async_start_relaunch(self) -> str:
        """(Re)start vLLM with `relaunch_model` through the swap's launch, in the background
        (claimed now: a second request is refused at once); returns the model's key."""
        model = self._known_relaunch_model()
        self.async_start(model)
        return model

    async def async_relaunch(self) -> SwapResult:
        """(Re)start vLLM with `relaunch_model` and wait for it to serve."""
        return await self.async_swap(self._known_relaunch_model())

    def _claim(self, model: str) -> tuple[SwapClaim, ModelEntry]:
        """Look the model up, then claim the runner (a refusal names the running swap)."""
        self.ensure_idle()
        with spark_errors(self.hass, self.config_entry):
            target = self.config_entry.runtime_data.catalog.catalog.get(model)
        status = self.config_entry.runtime_data.status.data
        served = status.vllm.models if status is not None and status.vllm is not None else []
        claim = self.client.swapper.claim(target.key)
        self._starting = not served or target.repo_id in served
        self._push()
        return claim, target

    @callback
    def async_start(self, model: str) -> None:
        """Start a swap in the background (the select does not wait minutes for a load)."""
        # Claimed now, not when the task first runs, so a second request is refused at once.
        claim, target = self._claim(model)
        self.config_entry.async_create_background_task(
            self.hass, self._run_logged(claim, target), f"{DOMAIN} swap to {model}"
        )

    async def _run_logged(self, claim: SwapClaim, target: ModelEntry) -> None:
        try:
            await self._swap(claim, target)
        except HomeAssistantError as error:
            # The event and the notification already told the user.
            LOGGER.debug("Background swap to %s ended: %s", target.key, error)

    async def async_swap(self, model: str) -> SwapResult:
        """Swap to a catalog model and wait for it to be served."""
        claim, target = self._claim(model)
        return await self._swap(claim, target)

    async def _swap(self, claim: SwapClaim, target: ModelEntry) -> SwapResult:
        """Run the claimed swap; the claim is released (and pushed) however it ends."""
        try:
            result = await self._swap_claimed(claim, target)
            # Read before the claim goes: vLLM's Running switch, on under the claim, would
            # otherwise read the container list of before the swap (none after a stop) as
            # "off" until the metrics are read again below. A key error here has raised its
            # repair issue; the swap itself succeeded.
            with contextlib.suppress(HomeAssistantError):
                await self.config_entry.runtime_data.metrics.async_refresh_containers()
        finally:
            claim.release()
            self._push()
            # Not awaited: the swap's answer does not wait for nvidia-smi on every node.
            self.config_entry.async_create_background_task(
                self.hass,
                self.config_entry.runtime_data.metrics.async_vllm_relaunched(),
                f"{DOMAIN} metrics after the swap to {target.key}",
            )
        return result

    async def _swap_claimed(self, claim: SwapClaim, target: ModelEntry) -> SwapResult:
        status = self.config_entry.runtime_data.status
        previous = status.data.vllm.models if status.data.vllm else []
        base = {
            "entry_id": self.config_entry.entry_id,
            "cluster": self.config_entry.title,
            # The swap's logbook lines belong to the model select (and its dashboard card).
            **logbook_entity(self.hass, self.config_entry, "select", "model"),
            # A start or restart of vLLM (its launch is a swap's): the logbook says "starting".
            "starting": self._starting,
        }
        self.hass.bus.async_fire(
            EVENT_SWAP_STARTED,
            {**base, "model": target.key, "repo_id": target.repo_id, "previous_models": previous},
        )
        timeout = 60.0 * self.config_entry.options.get(CONF_SWAP_TIMEOUT, DEFAULT_SWAP_TIMEOUT)
        try:
            result = await self.client.swap(
                target, timeout=timeout, on_progress=self._on_progress, claim=claim
            )
        except SwapFailed as error:
            # The repair issue / reauth first: whoever hears of the failure finds them.
            async_handle_key_error(self.hass, self.config_entry, error)
            fallback = self._fallback_for(target, previous, error)
            if fallback is not None:
                # Kept for the fallback before anyone hears of the failure: a request made
                # on the failed event is refused, naming the model being loaded again.
                claim.retarget(fallback.key)
                self._push()
            await self._report_failure(base, target.repo_id, error)
            if fallback is not None:
                await self._fall_back(claim, base, target, fallback, error, timeout)
            else:
                await status.async_refresh()  # the select shows what is served (maybe nothing)
            raise translate_error(error, self._label, self.hass) from error
        except SparkError as error:
            raise action_error(self.hass, self.config_entry, error) from error
        self._last_good = result.model
        async_dismiss_all(self.hass, self.config_entry.entry_id)  # old failures are past
        # Confirm from vLLM's own model list before the claim goes: the select shows the
        # target until then, and the served model (now the same) after.
        await status.async_refresh()
        self.hass.bus.async_fire(
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
    def _on_progress(self, _progress: SwapProgress) -> None:
        self._push()

    def _fallback_for(
        self, target: ModelEntry, previous: list[str], error: SwapFailed
    ) -> ModelEntry | None:
        """The last good model to relaunch after `target` failed, if the option allows: what
        vLLM served when the swap started, else the last model this entry loaded. None when
        there is none, it is the model that just failed, or the failure needs the user (SSH
        credentials: relaunching would fail the same way)."""
        if not self.config_entry.options.get(CONF_SWAP_FALLBACK, DEFAULT_SWAP_FALLBACK):
            return None
        if isinstance(error.__cause__, AuthRejected | HostKeyChanged):
            return None
        catalog = self.config_entry.runtime_data.catalog.catalog
        served = next(
            (entry for repo_id in previous if (entry := catalog.find_by_repo_id(repo_id))), None
        )
        key = served.key if served is not None else self._last_good
        if key is None or key == target.key or key not in catalog:
            return None
        return catalog.get(key)

    async def _fall_back(
        self,
        claim: SwapClaim,
        base: dict[str, Any],
        failed: ModelEntry,
        fallback: ModelEntry,
        error: SwapFailed,
        timeout: float,  # noqa: ASYNC109
    ) -> None:
        """Relaunch the last good model under the same claim (a request meanwhile is refused,
        naming the fallback), then tell the user what is served now."""
        LOGGER.warning(
            "%s: swap to %s failed (%s); loading %s again",
            self.config_entry.title,
            failed.key,
            error.reason,
            fallback.key,
        )
        try:
            result = await self.client.swap(
                fallback, timeout=timeout, on_progress=self._on_progress, claim=claim
            )
        except SwapFailed as second:
            await self._report_failure(base, fallback.repo_id, second)
            await self.config_entry.runtime_data.status.async_refresh()
            return
        except SparkError as second:
            LOGGER.warning("Fallback to %s failed: %s", fallback.key, second)
            await self.config_entry.runtime_data.status.async_refresh()
            return
        self._last_good = result.model
        await self.config_entry.runtime_data.status.async_refresh()
        self.hass.bus.async_fire(
            EVENT_SWAP_FELL_BACK,
            {
                **base,
                "model": failed.key,
                "repo_id": failed.repo_id,
                "reason": error.reason,
                "cause": error.cause,
                "detail": error.detail,
                "fallback_model": fallback.key,
                "fallback_repo_id": fallback.repo_id,
                "duration": round(result.duration, 3),
            },
        )
        await async_notify(
            self.hass,
            self.config_entry.entry_id,
            "swap_fell_back",
            {
                "cluster": self.config_entry.title,
                "model": self._label(failed.key),
                "reason": async_swap_failure_reason(self.hass, error.cause, error.detail),
                "fallback_model": self._label(fallback.key),
            },
        )

    def _label(self, key: str) -> str:
        """The model's name as the model select shows it (the key if the catalog lost it)."""
        return self.config_entry.runtime_data.catalog.catalog.label(key)

    async def _report_failure(self, base: dict[str, Any], repo_id: str, error: SwapFailed) -> None:
        progress = self.progress
        duration = progress.elapsed if progress is not None else 0.0
        self.hass.bus.async_fire(
            EVENT_SWAP_FAILED,
            {
                **base,
                "model": error.model,
                "repo_id": repo_id,
                "reason": error.reason,
                "cause": error.cause,
                "detail": error.detail,
                "duration": round(duration, 3),
                "last_lines": error.last_lines,
            },
        )
        await async_notify(
            self.hass,
            self.config_entry.entry_id,
            "swap_failed",
            {
                "cluster": self.config_entry.title,
                "model": self._label(error.model),
                "reason": async_swap_failure_reason(self.hass, error.cause, error.detail),
                "log_tail": "\n".join(error.last_lines[-10:]),
            },
            starting=base["starting"],
        )
