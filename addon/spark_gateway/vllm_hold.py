"""Holding chat requests while vLLM is not serving (a model swap, a restart) until it is.

How the gateway knows: it does not need to be told that a swap started. A relayed request that
finds vLLM refusing connections (stopped) or answering 503 (loading a model) marks vLLM down;
that request and every later one wait here. One poller asks vLLM's `/health` every
`POLL_INTERVAL_S` while anybody waits; the first 200 wakes them all, so each held request is
relayed within one poll interval of vLLM being ready. The hold is bounded twice: at most
`hold_max_requests` wait (more are refused at once), and none waits longer than `hold_timeout_s`;
both answer 503 with `Retry-After`. The count is shared (`WaitCap`) with the requests waiting for
a swap the gateway started (`model_swap.py`): `hold_max_requests` bounds all of them together.

Refused connections cannot tell a restart from a stop. With access to Home Assistant, the
poller also asks it every `STOPPED_CHECK_INTERVAL_S` whether vLLM's container is stopped (its
running switch off, no swap running): a request held while vLLM was being stopped (HA's stop
action, a `docker stop`) then ends with 503 `vllm_stopped` within about a second of Home
Assistant showing it, instead of at its deadline (with `swap_on_request` the chat route starts
vLLM for it instead). A request arriving while vLLM is stopped learns it on the first check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Final

from .errors import ApiError

_LOGGER = logging.getLogger(__name__)

POLL_INTERVAL_S: Final = 0.1
STOPPED_CHECK_INTERVAL_S: Final = 1.0  # a Home Assistant template render each, while any wait
RETRY_AFTER_S: Final = 10
# vLLM's container is stopped (Home Assistant says so): waiting cannot help.
VLLM_STOPPED: Final = "vllm_stopped"
# vLLM refuses connections: stopped (or restarting), where a loading one answers 503.
UNAVAILABLE: Final = "upstream_unavailable"
# Upstream error codes that mean "vLLM is not serving yet", worth waiting for. A vLLM that is
# not configured at all (upstream_not_configured) is not.
HOLDABLE_CODES: Final = frozenset({UNAVAILABLE, "upstream_loading"})
# vLLM closed the connection before answering (stopped for a swap while generating): nothing
# reached the client yet, so the request is held and sent again, a bounded number of times.
RESENDABLE_CODES: Final = frozenset({"upstream_disconnected"})
MAX_RESENDS: Final = 2


class WaitCap:
    """The one bound on chat requests waiting at once, for vLLM or for a swap alike."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._taken = 0

    @contextlib.contextmanager
    def seat(self, why_waiting: str) -> Iterator[None]:
        """Hold one place while inside; 503 `hold_queue_full` + Retry-After when none is free.

        `why_waiting` says what the request would wait for ("vLLM is loading a model").
        """
        if self._taken >= self.limit:
            raise _not_serving(
                f"{why_waiting} and {self.limit} requests already wait"
                if self.limit
                else f"{why_waiting} (requests are not held: hold_max_requests is 0)",
                "hold_queue_full",
            )
        self._taken += 1
        try:
            yield
        finally:
            self._taken -= 1


class VllmHold:
    """Where chat requests wait for vLLM; one health poller for all of them.

    `stopped_check` asks Home Assistant whether vLLM's container is stopped (None: no access).
    """

    def __init__(
        self,
        probe: Callable[[], Awaitable[bool]],
        on_ready: Callable[[], None],
        *,
        cap: WaitCap,
        timeout_s: float,
        stopped_check: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self._probe = probe
        self._on_ready = on_ready
        self._stopped_check = stopped_check
        self.cap = cap
        self.timeout_s = timeout_s
        self._serving = asyncio.Event()
        self._serving.set()  # optimistic until a request finds vLLM down
        self._stopped_seen = 0  # checks that found vLLM stopped, so far
        self._woken = asyncio.Event()  # replaced each time vLLM serves or is found stopped
        self._held = 0
        self._held_changed = asyncio.Event()  # replaced each time `held` changes
        self._poller: asyncio.Task[None] | None = None

    @property
    def max_held(self) -> int:
        """`hold_max_requests`: 0 turns holding off."""
        return self.cap.limit

    @property
    def held(self) -> int:
        """Requests waiting here now (for vLLM, not for a swap)."""
        return self._held

    async def until_held(self, count: int) -> None:
        """Return once at least `count` requests wait (for tests that drive a swap)."""
        while self._held < count:
            await self._held_changed.wait()

    @property
    def serving(self) -> bool:
        """Whether requests go straight to vLLM."""
        return self._serving.is_set()

    def deadline(self) -> float:
        """The monotonic time until which a request arriving now may be held."""
        return time.monotonic() + self.timeout_s

    def mark_down(self) -> None:
        """A request found vLLM not serving: hold everything until /health says 200."""
        if self._serving.is_set():
            _LOGGER.info("vLLM is not serving (swap or restart); holding chat requests")
        self._serving.clear()

    async def until_serving(self, deadline: float) -> None:
        """Return once vLLM serves; 503 + Retry-After when the hold is full or times out,
        503 `vllm_stopped` when Home Assistant shows vLLM stopped meanwhile."""
        if self._serving.is_set():
            return
        with self.cap.seat("vLLM is loading a model"):
            await self._wait_serving(deadline)

    async def _wait_serving(self, deadline: float) -> None:
        self._count_held(+1)
        stopped_before = self._stopped_seen  # only a check made during this wait counts
        try:
            self._ensure_poller()
            remaining = deadline - time.monotonic()
            try:
                async with asyncio.timeout(max(remaining, 0.0)):
                    while not self._serving.is_set():
                        if self._stopped_seen > stopped_before:
                            raise _vllm_stopped()
                        await self._woken.wait()
            except TimeoutError:
                raise _not_serving(
                    f"vLLM did not become ready within {self.timeout_s:g} s (it is stopped, "
                    "restarting or loading a model)",
                    "vllm_not_ready",
                ) from None
        finally:
            self._count_held(-1)

    def _count_held(self, change: int) -> None:
        self._held += change
        self._held_changed.set()
        self._held_changed = asyncio.Event()

    def _ensure_poller(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll())

    def _wake(self) -> None:
        self._woken.set()
        self._woken = asyncio.Event()

    async def _poll(self) -> None:
        checker = None
        if self._stopped_check is not None:
            checker = asyncio.get_running_loop().create_task(self._check_stopped())
        try:
            while self._held > 0 and not self._serving.is_set():
                if await self._probe():
                    self._on_ready()
                    self._serving.set()
                    self._wake()
                    _LOGGER.info("vLLM serves again; releasing %d held requests", self._held)
                    return
                await asyncio.sleep(POLL_INTERVAL_S)
        finally:
            if checker is not None:
                checker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await checker

    async def _check_stopped(self) -> None:
        """Ask Home Assistant now and then whether vLLM is stopped (runs beside the poller)."""
        assert self._stopped_check is not None
        while True:
            if await self._stopped_check():
                self._stopped_seen += 1
                self._wake()
            await asyncio.sleep(STOPPED_CHECK_INTERVAL_S)

    async def close(self) -> None:
        """Stop the poller (on shutdown)."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller


def _not_serving(message: str, code: str) -> ApiError:
    return ApiError(503, message, code=code, headers={"Retry-After": str(RETRY_AFTER_S)})


def _vllm_stopped() -> ApiError:
    # No Retry-After: a stopped vLLM comes back when someone starts it, not after a delay.
    return ApiError(
        503,
        "vLLM is stopped (Home Assistant shows its container stopped); start it from Home "
        "Assistant by choosing a model on the Spark Control model select",
        code=VLLM_STOPPED,
    )
