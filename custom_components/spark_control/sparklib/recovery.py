"""Recovery policy for GPU services that wedge: classification, restart budget, single-flight.

A wedged service still answers `/health` but fails real work (CUDA/CUBLAS errors, 5xx, or no
answer in time); a down service refuses connections or says it is not ready. Only a wedge is
repaired automatically, by restarting the container, and only within a sliding-window budget
that survives a restart of the host program (`RestartBudget.to_dict`/`from_dict`).

No Home Assistant import: the HA glue feeds reports in, turns `RecoveryEvent`s into bus events
and persists the budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, Protocol

# Substrings that mark a GPU failure in an error body (PyTorch/NeMo/vLLM tracebacks).
CUDA_ERROR_MARKERS: tuple[str, ...] = (
    "CUBLAS_STATUS",
    "CUDNN_STATUS",
    "CUDA error",
    "CUDA_ERROR",
    "cudaError",
    "device-side assert",
    "NCCL error",
    "illegal memory access",
)


class ServiceHealth(StrEnum):
    """Outcome of a deep probe."""

    HEALTHY = "healthy"
    WEDGED = "wedged"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One deep probe of one service."""

    service: str
    health: ServiceHealth
    detail: str
    elapsed: float  # seconds the probe took
    checked_at: float  # epoch seconds

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, used in action responses and diagnostics."""
        return {
            "service": self.service,
            "health": self.health.value,
            "detail": self.detail,
            "elapsed_ms": round(self.elapsed * 1000),
            "checked_at": self.checked_at,
        }


def has_cuda_error(text: str) -> bool:
    """Whether an error body carries one of the GPU failure markers."""
    return any(marker in text for marker in CUDA_ERROR_MARKERS)


def classify_work_response(status: int, body: str) -> ServiceHealth:
    """Classify the answer to a real request (transcribe, synthesize, complete).

    A 5xx or a CUDA error text means the GPU side is broken behind a working HTTP server; a 4xx
    is the server refusing our request in an orderly way, which is not a wedge.
    """
    if status >= 500 or has_cuda_error(body):
        return ServiceHealth.WEDGED
    return ServiceHealth.HEALTHY


def classify_health_response(status: int, body: str) -> ServiceHealth:
    """Classify the answer of a `/health`-style endpoint.

    503 is how vLLM says "loading a model" and the NIMs say "not ready": that is not a wedge,
    and restarting would only abort the load. Other 5xx or a CUDA error text are wedges.
    """
    if has_cuda_error(body):
        return ServiceHealth.WEDGED
    if status == 503:
        return ServiceHealth.DOWN
    if status >= 500:
        return ServiceHealth.WEDGED
    if status >= 400:
        return ServiceHealth.DOWN
    return ServiceHealth.HEALTHY


@dataclass(frozen=True, slots=True)
class BudgetDecision:
    """Whether an automatic restart may run now."""

    allowed: bool
    attempt: int  # restarts in the window including this one (when allowed)
    remaining: int  # restarts left in the window after this decision
    retry_at: float | None  # epoch seconds when a slot frees up, when not allowed


class RestartBudget:
    """At most `limit` automatic restarts per service within a sliding `window` (seconds).

    Timestamps are wall-clock epoch seconds so the state stays meaningful after the host
    program restarts.
    """

    STORAGE_VERSION = 1

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        clock: Callable[[], float] = time.time,
        history: Mapping[str, Iterable[float]] | None = None,
        per_service: Mapping[str, tuple[int, float]] | None = None,
    ) -> None:
        """Start empty or from a saved history. `per_service` gives a service its own
        (limit, window) instead of the shared one (vLLM: a reload takes minutes)."""
        for each_limit, each_window in [(limit, window), *(per_service or {}).values()]:
            if each_limit < 0 or each_window <= 0:
                raise ValueError("restart limit must be >= 0 and window > 0")
        self.limit = limit
        self.window = window
        self.per_service = dict(per_service or {})
        self._clock = clock
        self._history: dict[str, list[float]] = {
            service: sorted(float(stamp) for stamp in stamps)
            for service, stamps in (history or {}).items()
        }

    def reconfigure(self, limit: int, window: float) -> None:
        """Apply new options; restarts already made stay counted."""
        if limit < 0 or window <= 0:
            raise ValueError("restart limit must be >= 0 and window > 0")
        self.limit = limit
        self.window = window

    def limit_for(self, service: str) -> int:
        """The restarts `service` may have per window."""
        return self.per_service.get(service, (self.limit, self.window))[0]

    def window_for(self, service: str) -> float:
        """The window (seconds) the restarts of `service` count over."""
        return self.per_service.get(service, (self.limit, self.window))[1]

    def _recent(self, service: str) -> list[float]:
        now = self._clock()
        window = self.window_for(service)
        stamps = [s for s in self._history.get(service, []) if now - s < window]
        # Clock jumps backwards (NTP) must not keep a future stamp forever.
        stamps = [s for s in stamps if s <= now + window]
        self._history[service] = stamps
        return stamps

    def used(self, service: str) -> int:
        """Automatic restarts of `service` in the current window."""
        return len(self._recent(service))

    def remaining(self, service: str) -> int:
        """Automatic restarts still allowed in the current window."""
        return max(0, self.limit_for(service) - self.used(service))

    def next_slot(self, service: str) -> float | None:
        """Epoch seconds when the oldest restart leaves the window (None if a slot is free)."""
        stamps = self._recent(service)
        limit = self.limit_for(service)
        if len(stamps) < limit:
            return None
        if not stamps:  # limit 0: automatic restarts are off
            return None
        return stamps[len(stamps) - limit] + self.window_for(service)

    def try_acquire(self, service: str) -> BudgetDecision:
        """Take one restart from the budget if one is left."""
        stamps = self._recent(service)
        limit = self.limit_for(service)
        if len(stamps) >= limit:
            return BudgetDecision(
                allowed=False, attempt=len(stamps), remaining=0, retry_at=self.next_slot(service)
            )
        stamps.append(self._clock())
        return BudgetDecision(
            allowed=True, attempt=len(stamps), remaining=limit - len(stamps), retry_at=None
        )

    def to_dict(self) -> dict[str, Any]:
        """Serialisable state (only stamps still inside the window)."""
        return {
            "version": self.STORAGE_VERSION,
            "restarts": {service: list(self._recent(service)) for service in list(self._history)},
        }

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any] | None,
        *,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.time,
        per_service: Mapping[str, tuple[int, float]] | None = None,
    ) -> RestartBudget:
        """Rebuild from `to_dict` output; unreadable parts are dropped, never fatal."""
        history: dict[str, list[float]] = {}
        restarts = data.get("restarts") if isinstance(data, Mapping) else None
        if isinstance(restarts, Mapping):
            for service, stamps in restarts.items():
                if isinstance(service, str) and isinstance(stamps, list):
                    history[service] = [
                        float(s)
                        for s in stamps
                        if isinstance(s, int | float) and not isinstance(s, bool)
                    ]
        return cls(limit, window, clock=clock, history=history, per_service=per_service)


type TaskFactory = Callable[[Coroutine[Any, Any, Any], str], asyncio.Task[Any]]


def _default_task_factory(coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
    return asyncio.get_running_loop().create_task(coro, name=name)


class SingleFlight[K: Hashable, T]:
    """One running task per key; callers arriving while it runs await the same task.

    Each caller awaits through `asyncio.shield`, so one caller giving up (timeout, cancel)
    does not cancel the work the others are waiting for.
    """

    def __init__(self, task_factory: TaskFactory | None = None) -> None:
        """Use the given task factory (e.g. one that registers tasks with the host)."""
        self._tasks: dict[K, asyncio.Task[T]] = {}
        self._task_factory = task_factory or _default_task_factory
        self.started = 0  # tasks actually started (joins do not count)

    def running(self, key: K) -> bool:
        """Whether work for `key` is in flight."""
        task = self._tasks.get(key)
        return task is not None and not task.done()

    async def run(self, key: K, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Start `work()` for `key`, or join the one already running."""
        task = self._tasks.get(key)
        if task is None or task.done():
            task = self._task_factory(work(), f"single-flight {key}")
            self.started += 1
            self._tasks[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        return await asyncio.shield(task)

    async def finished(self, key: K) -> None:
        """Return once the work running for `key` (if any) has ended, however it ended."""
        task = self._tasks.get(key)
        if task is not None:
            await asyncio.wait({task})

    def _forget(self, key: K, task: asyncio.Task[T]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]

    async def aclose(self) -> None:
        """Cancel everything in flight and wait for it to end."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()


class ServiceProber(Protocol):
    """What the manager needs from the deep probes (`sparklib.probes.DeepProber`)."""

    async def probe(self, service: str) -> ProbeResult:
        """Run the deep probe; never raises for service failures."""
        ...

    async def is_healthy(self, service: str) -> bool:
        """Quick `/health` check."""
        ...


type EventKind = Literal[
    "wedge_detected",
    "service_restarted",
    "restart_suppressed",
    "restart_failed",
    "service_recovered",
]


@dataclass(frozen=True, slots=True)
class RecoveryEvent:
    """Something the host should announce (the HA glue fires it on the bus)."""

    kind: EventKind
    service: str
    data: dict[str, Any]


@dataclass(slots=True)
class ServiceRecoveryState:
    """What the manager knows about one service, for entities and diagnostics."""

    last_result: ProbeResult | None = None
    wedged_since: float | None = None  # epoch seconds; None while not wedged
    last_wedge_at: float | None = None
    suppressed: bool = False  # automatic restarts exhausted while wedged
    checks: int = 0

    @property
    def wedged(self) -> bool:
        """Whether the service is wedged and not yet recovered."""
        return self.wedged_since is not None


@dataclass(frozen=True, slots=True)
class RecoveryOutcome:
    """What one check (and the repair it led to) ended with."""

    service: str
    probe: ProbeResult  # the first probe of the check
    final: ProbeResult  # the last probe (after restarts, if any)
    restarts: int = 0
    suppressed: bool = False
    restart_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for action responses."""
        return {
            "health": self.final.health.value,
            "detail": self.final.detail,
            "elapsed_ms": round(self.probe.elapsed * 1000),
            "first_probe": self.probe.health.value,
            "restarts": self.restarts,
            "suppressed": self.suppressed,
            "restart_error": self.restart_error,
        }


type Restarter = Callable[[str], Awaitable[object]]
# Waits for a restart of the service that something else has under way (vLLM: a swap or a
# start holding the swap claim); True once it has ended, False at once if none runs.
type RestartWaiter = Callable[[str], Awaitable[bool]]
type BudgetSaver = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(kw_only=True)
class RecoveryTuning:
    """Timing knobs of the repair loop."""

    recovery_timeout: float = 180.0  # seconds to wait for health after a restart
    health_poll_interval: float = 0.25  # seconds between /health checks while waiting


class RecoveryManager:
    """Probe, classify and repair services; one check in flight per service.

    `report_wedge` (a client saw a failure) and `deep_check` (timer or user) share the same
    single-flight check: a report arriving while a check or a repair runs joins it instead of
    starting another probe or another restart.

    Events are per episode (wedged until recovered): `wedge_detected` when it starts (and when
    a restart did not help), `restart_suppressed` once when the budget runs out; checking an
    already suppressed service again is quiet until it recovers or a budget slot frees up.

    A check that finds a restart already under way by other means (`wait_for_restart`) waits
    for it once instead of restarting: if the service comes back healthy that counts as the
    recovery (`service_recovered`, `restarts` 0), with no restart of its own and no budget spent.
    """

    def __init__(
        self,
        *,
        services: Iterable[str],
        prober: ServiceProber,
        restarter: Restarter,
        wait_for_restart: RestartWaiter | None = None,
        budget: RestartBudget,
        on_event: Callable[[RecoveryEvent], None],
        save_budget: BudgetSaver | None = None,
        on_change: Callable[[], None] | None = None,
        tuning: RecoveryTuning | None = None,
        task_factory: TaskFactory | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Wire the manager to its probes, its restart command and its host callbacks."""
        self.services = tuple(services)
        self.budget = budget
        self._prober = prober
        self._restarter = restarter
        self._wait_for_restart = wait_for_restart
        self._on_event = on_event
        self._save_budget = save_budget
        self._on_change = on_change or (lambda: None)
        self.tuning = tuning or RecoveryTuning()
        self._clock = clock
        self._flights: SingleFlight[str, RecoveryOutcome] = SingleFlight(task_factory)
        self._states = {service: ServiceRecoveryState() for service in self.services}

    @property
    def probes_started(self) -> int:
        """Checks actually started (joined reports do not count)."""
        return self._flights.started

    def state(self, service: str) -> ServiceRecoveryState:
        """Current knowledge about `service`."""
        return self._states[service]

    def checking(self, service: str) -> bool:
        """Whether a check or repair of `service` is running."""
        return self._flights.running(service)

    async def check_finished(self, service: str) -> None:
        """Return once the check or repair of `service` running now (if any) has ended."""
        await self._flights.finished(service)

    async def report_wedge(self, service: str, error: str, source: str) -> RecoveryOutcome:
        """A client saw `service` fail: check it now (or join the running check)."""
        self._require(service)
        reported_at = self._clock()
        return await self._flights.run(
            service, lambda: self._check(service, source, reported_at=reported_at, error=error)
        )

    async def report_confirmed_wedge(
        self, service: str, detail: str, source: str
    ) -> RecoveryOutcome:
        """`service` was seen wedged by other means than a probe (a frozen generation in its
        metrics, an engine-death line in its log): repair it without probing first, or join
        the check already running. A probe would only wait out its timeout on a frozen engine,
        or take a dead engine's `/health` 503 for a model load."""
        self._require(service)
        now = self._clock()
        seen = ProbeResult(
            service=service, health=ServiceHealth.WEDGED, detail=detail, elapsed=0.0, checked_at=now
        )
        return await self._flights.run(
            service, lambda: self._check(service, source, reported_at=now, seen=seen)
        )

    async def deep_check(self, service: str, source: str = "periodic") -> RecoveryOutcome:
        """Probe `service` and repair it if wedged (or join the running check)."""
        self._require(service)
        return await self._flights.run(service, lambda: self._check(service, source))

    async def aclose(self) -> None:
        """Stop every running check."""
        await self._flights.aclose()

    def _require(self, service: str) -> None:
        if service not in self._states:
            raise ValueError(f"unknown service {service!r}")

    def _emit(self, kind: EventKind, service: str, **data: Any) -> None:
        self._on_event(RecoveryEvent(kind, service, {"service": service, **data}))

    def _record(self, result: ProbeResult) -> None:
        state = self._states[result.service]
        state.last_result = result
        state.checks += 1
        self._on_change()

    async def _check(
        self,
        service: str,
        source: str,
        *,
        reported_at: float | None = None,
        error: str | None = None,
        seen: ProbeResult | None = None,
    ) -> RecoveryOutcome:
        state = self._states[service]
        first = result = seen if seen is not None else await self._prober.probe(service)
        self._record(result)
        restarts = 0
        suppressed = False
        restart_error: str | None = None
        waited = False
        while result.health is ServiceHealth.WEDGED:
            new_episode = state.wedged_since is None
            if new_episode:
                # Downtime starts when a client first saw the failure, if one did.
                state.wedged_since = min(reported_at or result.checked_at, result.checked_at)
            state.last_wedge_at = result.checked_at
            if new_episode or restarts:
                # Once per episode (and again if a restart did not help): repeated checks of
                # a service already known wedged must not flood automations.
                self._emit(
                    "wedge_detected",
                    service,
                    error=result.detail,
                    source=source if restarts == 0 else "post_restart_probe",
                    reported_error=error,
                )
            if not waited and self._wait_for_restart is not None:
                waited = await self._wait_for_restart(service)
                if waited:
                    # Its outcome is this check's: healthy ends the episode below, still
                    # wedged goes on to a restart of our own.
                    result = await self._await_recovery(service)
                    self._record(result)
                    continue
            decision = self.budget.try_acquire(service)
            if not decision.allowed:
                suppressed = True
                if not state.suppressed:
                    state.suppressed = True
                    self._on_change()
                    self._emit(
                        "restart_suppressed",
                        service,
                        error=result.detail,
                        restarts_in_window=decision.attempt,
                        limit=self.budget.limit_for(service),
                        window_minutes=round(self.budget.window_for(service) / 60, 2),
                        retry_at=decision.retry_at,
                    )
                break
            # Persist before acting, so a crash right after the restart still counts it.
            await self._persist_budget()
            self._on_change()
            try:
                await self._restarter(service)
            except Exception as err:  # any failure must end as an event, not a crash
                restart_error = str(err) or type(err).__name__
                self._emit("restart_failed", service, error=restart_error, attempt=decision.attempt)
                break
            restarts += 1
            self._emit(
                "service_restarted",
                service,
                reason=result.detail,
                attempt=decision.attempt,
                budget_left=decision.remaining,
                source=source,
            )
            result = await self._await_recovery(service)
            self._record(result)
            if result.health is ServiceHealth.DOWN:
                restart_error = result.detail
                self._emit("restart_failed", service, error=result.detail, attempt=decision.attempt)
                break
        if result.health is ServiceHealth.HEALTHY and state.wedged_since is not None:
            self._emit(
                "service_recovered",
                service,
                downtime=round(self._clock() - state.wedged_since, 3),
                restarts=restarts,
                source=source,
            )
            state.wedged_since = None
            state.suppressed = False
            self._on_change()
        return RecoveryOutcome(
            service=service,
            probe=first,
            final=result,
            restarts=restarts,
            suppressed=suppressed,
            restart_error=restart_error,
        )

    async def _await_recovery(self, service: str) -> ProbeResult:
        """Wait for `/health`, then probe again; give up after the recovery timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.tuning.recovery_timeout
        while loop.time() < deadline:
            if await self._prober.is_healthy(service):
                result = await self._prober.probe(service)
                if result.health is not ServiceHealth.DOWN:
                    return result
            await asyncio.sleep(self.tuning.health_poll_interval)
        return ProbeResult(
            service=service,
            health=ServiceHealth.DOWN,
            detail=f"not healthy {self.tuning.recovery_timeout:g} s after the restart",
            elapsed=self.tuning.recovery_timeout,
            checked_at=self._clock(),
        )

    async def _persist_budget(self) -> None:
        if self._save_budget is not None:
            await self._save_budget(self.budget.to_dict())
