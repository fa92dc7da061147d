"""Swaps a chat request starts (`swap_on_request`, llama-swap's behaviour), one at a time.

A request naming a catalog key that is not loaded asks Home Assistant to swap to it
(`CatalogNames.swap`, the integration's own action) and waits for the swap, together with every
other request naming the same model, bounded like the vLLM hold and together with it: at most
`hold_max_requests` requests wait in both (one `WaitCap`), each until its own hold deadline
(503 + Retry-After past either). A failed swap ends all of them with a 502 `model_swap_failed`
giving Home Assistant's reason, and requests for that model get the same 502 for
`FAILED_SWAP_MEMORY_S` (a client retrying in a loop must not make Home Assistant load it again
and again). A request naming the model being loaded waits for the swap
itself (`join`), never in the vLLM hold, so it hears of a failure at once.

One swap at a time, and no thrashing: while a swap this gateway started runs (or waits for one
started in Home Assistant, which is never interrupted), a request naming any other catalog
model (the one being replaced included) is refused at once with 503 `model_swap_in_progress`
and `Retry-After`, instead of queueing a swap back. Once the swap is over, the next request for
another model starts the next swap. A swap that waited for one started in Home Assistant (the
select, an automation, the integration relaunching a crashed vLLM: all hold the integration's
one swap claim, so two launches never overlap) is not made when that one loaded the same model.

A stopped vLLM is started on demand, as llama-swap does: when vLLM refuses connections and Home
Assistant shows its container stopped (the running switch off, no swap running), a request
naming a catalog key (or `current`, or a catalog model's repo id) has Home Assistant swap to that
model, which launches it (`start_stopped`); `current` names the model vLLM served last, as Home
Assistant's model select remembers it (`last_served_key`), so also after a restart of this
gateway. The request waits for that swap like for any other, with the same bounds. A request
held while vLLM was being stopped does the same once Home Assistant shows it stopped
(`vllm_hold.py` checks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Final

from .catalog_names import CatalogNames, ModelSelect, SwapRefused, SwapSession
from .chat_models import CURRENT, ChatModels
from .errors import ApiError, UpstreamError
from .ha_websocket import HaConnectionLost
from .vllm_hold import RETRY_AFTER_S, WaitCap

_LOGGER = logging.getLogger(__name__)

# How long a failed swap is remembered: requests for that model get its error again meanwhile.
FAILED_SWAP_MEMORY_S: Final = 60.0
# How often a swap waiting for one started in Home Assistant connects again when the
# connection drops, and the pause before each new attempt after the first.
RECONNECTS: Final = 3
RECONNECT_PAUSE_S: Final = 1.0
# How long Home Assistant's "vLLM is not stopped" answer is trusted: requests arriving while vLLM
# restarts or loads ask it once a second at most, not once each.
NOT_STOPPED_MEMORY_S: Final = 1.0


@dataclass(slots=True)
class _Swap:
    key: str
    task: asyncio.Task[None]


class ModelSwapper:
    """Starts Home Assistant swaps for requests and holds those requests until they end."""

    def __init__(
        self, catalog: CatalogNames, models: ChatModels, *, cap: WaitCap, turn_wait_s: float
    ) -> None:
        self._catalog = catalog
        self._models = models
        self._cap = cap  # shared with the vLLM hold
        self.turn_wait_s = turn_wait_s  # longest wait for a swap started in Home Assistant
        self._running: _Swap | None = None
        self._waiting = 0
        self._waiting_changed = asyncio.Event()  # replaced each time `_waiting` changes
        # Catalog key -> when its swap failed (monotonic) and the error its requests got.
        self._failures: dict[str, tuple[float, ApiError]] = {}
        self._checking_stopped = asyncio.Lock()
        self._not_stopped_until = -math.inf  # monotonic

    @property
    def target(self) -> str | None:
        """The catalog key of the swap this gateway started and that still runs."""
        return self._running.key if self._running is not None else None

    async def until_waiting(self, count: int) -> None:
        """Return once at least `count` requests wait for the swap (for tests that drive one)."""
        while self._waiting < count:
            await self._waiting_changed.wait()

    async def until_idle(self) -> None:
        """Return once no swap this gateway started runs (for tests: Home Assistant fires the
        swap's end before its answer to the gateway arrives)."""
        if self._running is not None:
            await asyncio.wait({self._running.task})

    def _count_waiting(self, change: int) -> None:
        self._waiting += change
        self._waiting_changed.set()
        self._waiting_changed = asyncio.Event()

    def admit(self, name: object) -> None:
        """Refuse at once what waiting cannot help: another catalog model while a swap runs,
        and a model whose swap failed moments ago (unless it is loaded now)."""
        if not isinstance(name, str):
            return
        self.refuse_other_models(name)
        if name != self._models.catalog_key:
            self._refuse_recent_failure(name)

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
        self._refuse_recent_failure(name)
        if self._running is None:
            self._start(name, select)
        await self.join(name, deadline)

    async def start_stopped(self, name: str, deadline: float, *, fresh: bool = False) -> bool:
        """Start a vLLM that Home Assistant shows stopped, with the model `name` stands for, and
        wait until it serves it (or join that start when another request made it).

        False when vLLM is not known to be stopped (restarting, loading, in a swap: the vLLM
        hold waits for it), when `name` stands for no catalog model, or when a swap to another
        model runs; the request then waits in the vLLM hold as before. `fresh`: ask Home
        Assistant even if it said "not stopped" a moment ago (the hold just found it stopped).
        """
        async with self._checking_stopped:
            running = self._running
            if running is None:
                if fresh:
                    self._not_stopped_until = -math.inf
                select = await self._select_if_stopped()
                key = self._key_to_start(name, select) if select is not None else None
                if select is None or key is None:
                    return False
                self._refuse_recent_failure(key)
                _LOGGER.info(
                    "vLLM is stopped in Home Assistant; a request names %s: starting it", key
                )
                running = self._start(key, select)
            elif running.key != self._key_to_start(name, self._models.select):
                return False
        await self.join(running.key, deadline)
        return True

    async def _select_if_stopped(self) -> ModelSelect | None:
        if not self._catalog.reachable or time.monotonic() < self._not_stopped_until:
            return None
        select = await self._catalog.select_if_vllm_stopped()
        if select is None:
            self._not_stopped_until = time.monotonic() + NOT_STOPPED_MEMORY_S
        return select

    def _key_to_start(self, name: str, select: ModelSelect | None) -> str | None:
        """The catalog model a request naming `name` wants started: a catalog key, a catalog
        model's repo id, or `current` for the model vLLM served last: as Home Assistant saw it
        (it sees every swap and poll, also while this gateway was not running), else as this
        gateway did (None if neither knows)."""
        if select is None:
            return None
        if name in select.catalog:
            return name
        if name == CURRENT:
            return select.last_served_key or self._models.catalog_key
        return select.key_for(name)

    async def join(self, name: str, deadline: float) -> None:
        """Wait for the running swap to `name` to end (at once when none runs).

        A request naming the model being loaded waits here, not in the vLLM hold: it learns at
        once when the swap fails, instead of waiting for a vLLM that may never serve it.
        """
        running = self._running
        if running is None or running.key != name:
            return
        with self._cap.seat(f"vLLM is being swapped to {name!r}"):
            await self._wait_for(running, name, deadline)

    async def _wait_for(self, running: _Swap, name: str, deadline: float) -> None:
        self._count_waiting(+1)
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
            self._count_waiting(-1)

    def _refuse_recent_failure(self, name: str) -> None:
        """The same 502 again for a model whose swap failed moments ago: clients retrying it
        must not make Home Assistant load (and with its fallback, unload) it over and over."""
        failed = self._failures.get(name)
        if failed is None:
            return
        at, error = failed
        age = time.monotonic() - at
        if age >= FAILED_SWAP_MEMORY_S:
            del self._failures[name]
            return
        raise ApiError(
            error.status,
            f"{error.message} ({age:.0f} s ago; not tried again for {FAILED_SWAP_MEMORY_S:g} s)",
            code=error.code,
            headers={"Retry-After": str(math.ceil(FAILED_SWAP_MEMORY_S - age))},
        )

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
            await self._swap_in_turn(select, key)
            self._failures.pop(key, None)
        except SwapRefused as err:
            _LOGGER.warning("the swap to %s failed: %s", key, err)
            if err.busy:
                raise ApiError(
                    503,
                    f"could not swap vLLM to {key!r}: {err}",
                    code="model_swap_in_progress",
                    headers={"Retry-After": str(RETRY_AFTER_S)},
                ) from err
            error = ApiError(
                502,
                f"could not swap vLLM to {key!r}: {err} ({await self._served_now()})",
                code="model_swap_failed",
            )
            self._failures[key] = (time.monotonic(), error)
            raise error from err
        finally:
            self._models.forget()  # whatever vLLM serves now, learn it afresh

    async def _swap_in_turn(self, select: ModelSelect, key: str) -> None:
        """Swap, after any swap started in Home Assistant (the select, an automation): that one
        is never interrupted; this one waits its turn for at most `turn_wait_s`, told by Home
        Assistant's swap sensor when the turn comes. A connection that drops while it waits is
        opened again (the subscription's first state says where that swap is by then)."""
        give_up = time.monotonic() + self.turn_wait_s
        for attempt in range(RECONNECTS + 1):
            try:
                async with self._catalog.swap_session(select) as session:
                    await self._swap_when_idle(session, key, give_up)
                    return
            except HaConnectionLost as err:
                if attempt == RECONNECTS or time.monotonic() >= give_up:
                    raise SwapRefused(
                        f"lost Home Assistant's WebSocket API while waiting to swap: {err}"
                    ) from err
                _LOGGER.warning("%s; connecting again to swap to %s", err, key)
                if attempt:
                    await asyncio.sleep(RECONNECT_PAUSE_S)  # Home Assistant may be restarting
        raise AssertionError("unreachable")  # pragma: no cover

    async def _swap_when_idle(self, session: SwapSession, key: str, give_up: float) -> None:
        said_waiting = False
        while True:
            if not session.swap_running:
                if said_waiting and await self._serves(key):
                    # The swap it waited for loaded this very model (the select, or the
                    # integration relaunching vLLM after a crash): launching it again would
                    # only stop it and load it once more.
                    _LOGGER.info("the swap in Home Assistant loaded %s; no swap of our own", key)
                    return
                try:
                    await session.swap(key)
                    return
                except SwapRefused as err:
                    # Busy although the sensor said idle: an older integration whose sensor
                    # shows no claim; its next change may end the wait.
                    if not err.busy or session.sensor is None:
                        raise
            if not said_waiting:
                _LOGGER.info("another swap runs in Home Assistant; the swap to %s waits", key)
                said_waiting = True
            try:
                async with asyncio.timeout(give_up - time.monotonic()):
                    await session.next_change()
            except TimeoutError:
                raise SwapRefused(
                    f"another swap ran in Home Assistant for longer than {self.turn_wait_s:g} s",
                    busy=True,
                ) from None

    async def _serves(self, key: str) -> bool:
        """Whether Home Assistant's model select shows `key` (no swap running: it is served)."""
        select = await self._catalog.model_select()
        return select is not None and select.shown_key == key

    async def _served_now(self) -> str:
        """What vLLM serves after a failed swap (Home Assistant may have loaded the old model
        again), for the error message."""
        try:
            await self._models.cards(max_age_s=0)
        except UpstreamError:
            return "vLLM serves no model now"
        key = self._models.catalog_key
        return f"vLLM serves {key!r} now" if key else "vLLM serves a model outside the catalog"

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
