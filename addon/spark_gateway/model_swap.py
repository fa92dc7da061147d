"""Swaps a chat request starts (`swap_on_request`, llama-swap's behaviour), one at a time.

A request naming a catalog key that is not loaded asks Home Assistant to swap to it
(`CatalogNames.swap`, the integration's own action) and waits for the swap, together with every
other request naming the same model, bounded like the vLLM hold: at most `max_waiting` requests
and each until its own hold deadline (503 + Retry-After past either). A failed swap ends all of
them with a 502 `model_swap_failed` giving Home Assistant's reason.

One swap at a time, and no thrashing: while a swap this gateway started runs, a request naming
any other catalog model (the one being replaced included) is refused at once with 503
`model_swap_in_progress` and `Retry-After`, instead of queueing a swap back. Once the swap is
over, the next request for another model starts the next swap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from .catalog_names import CatalogNames, ModelSelect, SwapRefused
from .chat_models import ChatModels
from .errors import ApiError
from .vllm_hold import RETRY_AFTER_S

_LOGGER = logging.getLogger(__name__)


@dataclass(slots=True)
class _Swap:
    key: str
    task: asyncio.Task[None]


class ModelSwapper:
    """Starts Home Assistant swaps for requests and holds those requests until they end."""

    def __init__(self, catalog: CatalogNames, models: ChatModels, *, max_waiting: int) -> None:
        self._catalog = catalog
        self._models = models
        self.max_waiting = max_waiting
        self._running: _Swap | None = None
        self._waiting = 0

    @property
    def target(self) -> str | None:
        """The catalog key of the swap this gateway started and that still runs."""
        return self._running.key if self._running is not None else None

    def refuse_other_models(self, name: object) -> None:
        """503 + Retry-After for a request naming another catalog model while a swap runs."""
        target = self.target
        if target is None or name == target or not isinstance(name, str):
            return
        select = self._models.select
        if select is None or name not in select.catalog:
            return  # `current`, repo ids and unknown names follow the usual rules
        raise ApiError(
            503,
            f"the gateway is swapping vLLM to {target!r}; {name!r} can be swapped to after that",
            code="model_swap_in_progress",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    async def swap_to(self, name: str, not_loaded: ApiError, deadline: float) -> None:
        """Swap to catalog model `name` (or join the swap to it) and wait until it ends.

        `not_loaded` is the 404 the request got; it stands when `name` is no catalog key.
        """
        self.refuse_other_models(name)
        if not self._catalog.reachable:
            raise _cannot_swap(
                name,
                "the gateway has no access to Home Assistant's API (no Supervisor token, and "
                "ha_url + ha_token are not set)",
            )
        select = self._models.select
        if select is None:
            raise _cannot_swap(
                name,
                "Home Assistant did not show a Spark Control model select (is the integration "
                "set up, and ha_model_select set when it runs several clusters?)",
            )
        if self._models.swappable(name) is None:
            raise not_loaded  # not in the catalog: never swapped to
        running = self._running
        if running is None:
            running = self._start(name, select)
        if self._waiting >= self.max_waiting:
            raise ApiError(
                503,
                f"vLLM is being swapped to {name!r} and {self.max_waiting} requests already "
                "wait for it"
                if self.max_waiting
                else f"vLLM is being swapped to {name!r} (requests are not held: "
                "hold_max_requests is 0)",
                code="hold_queue_full",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self._waiting += 1
        try:
            async with asyncio.timeout(max(deadline - time.monotonic(), 0.0)):
                await asyncio.shield(running.task)
        except TimeoutError:
            raise ApiError(
                503,
                f"the swap to {name!r} did not finish within the hold time; it goes on in "
                "Home Assistant",
                code="vllm_not_ready",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            ) from None
        finally:
            self._waiting -= 1

    def _start(self, key: str, select: ModelSelect) -> _Swap:
        _LOGGER.info("a chat request names %s: asking Home Assistant to swap to it", key)
        task = asyncio.get_running_loop().create_task(self._swap(select, key))
        swap = _Swap(key, task)
        self._running = swap
        task.add_done_callback(self._finished)
        return swap

    async def _swap(self, select: ModelSelect, key: str) -> None:
        self._models.forget()
        try:
            await self._catalog.swap(select, key)
        except SwapRefused as err:
            _LOGGER.warning("the swap to %s failed: %s", key, err)
            raise ApiError(
                503 if err.busy else 502,
                f"could not swap vLLM to {key!r}: {err}",
                code="model_swap_in_progress" if err.busy else "model_swap_failed",
                headers={"Retry-After": str(RETRY_AFTER_S)} if err.busy else None,
            ) from err
        finally:
            self._models.forget()  # whatever vLLM serves now, learn it afresh

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running = None
        if not task.cancelled():
            task.exception()  # seen here even when every waiter timed out

    async def close(self) -> None:
        """Stop waiting for a swap on shutdown (Home Assistant carries on with it)."""
        if self._running is not None:
            self._running.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ApiError):
                await self._running.task


def _cannot_swap(name: str, why: str) -> ApiError:
    return ApiError(
        404,
        f"model {name!r} is not loaded and swap_on_request cannot swap to it: {why}",
        code="model_not_loaded",
        param="model",
    )
