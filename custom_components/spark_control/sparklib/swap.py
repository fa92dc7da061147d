"""Swap the model vLLM serves: stop, launch detached, follow the log until it is ready.

One swap at a time per cluster. The log is followed line by line so "ready" is reported
within milliseconds of `Application startup complete.` (plus one `/health` request),
instead of waiting for the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from .catalog import ModelEntry
from .commands import VLLM_CONTAINER, docker_inspect, docker_logs, launch_model, stop_cluster
from .containers import parse_docker_inspect
from .errors import (
    CannotConnect,
    ServiceUnreachable,
    SparkError,
    SwapFailed,
    SwapFailureCause,
    SwapInProgress,
    swap_error_cause,
)
from .http_api import ServiceApi
from .service_keys import VLLM
from .ssh import SshNode

_LOGGER = logging.getLogger(__name__)

type SwapStatus = Literal["idle", "stopping", "starting", "loading", "ready", "failed"]

STARTUP_COMPLETE = "Application startup complete."
LAST_LINES = 20
LOG_LINE_CHARS = 300  # a traceback line can be huge; the tail is for reading, not parsing
HEALTH_POLL_INTERVAL = 0.1
SERVER_CHECK_INTERVAL = 1.0  # how often a load looks whether vLLM's server still runs
FOLLOW_RECONNECTS = 3
FOLLOW_RETRY_DELAY = 0.5
_TRACEBACK = "Traceback (most recent call last):"
_ERROR_LINE = re.compile(r"\b(RuntimeError|[A-Z]\w*Error|[A-Z]\w*Exception)\b:")


@dataclass(frozen=True, slots=True)
class SwapProgress:
    """A snapshot of a swap, passed to `on_progress` at each phase and log line."""

    status: SwapStatus
    model: str  # catalog key
    started_at: datetime
    elapsed: float  # seconds since started_at
    last_line: str | None = None
    repo_id: str | None = None
    # The last LAST_LINES lines of the load log, oldest first (each cut to LOG_LINE_CHARS).
    log_tail: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SwapResult:
    """A finished, successful swap."""

    model: str
    repo_id: str
    duration: float
    served_models: list[str] = field(default_factory=list)


type ProgressCallback = Callable[[SwapProgress], None]


class SwapClaim:
    """The runner's busy flag, held by one swap from its request until its caller is done.

    Claimed synchronously (`SwapRunner.claim`), so a second request made in the same loop
    iteration is refused at once, before any task of the first one has run. Release it with
    `release()` or by leaving its `with` block.
    """

    def __init__(self, runner: SwapRunner, model: str) -> None:
        self.runner = runner
        self.model = model

    def retarget(self, model: str) -> None:
        """Keep the runner for a follow-up swap to `model` (a fallback after a failure), so
        no other request slips in between."""
        self.model = model

    def release(self) -> None:
        """Free the runner for the next swap (idempotent)."""
        self.runner.release(self)

    def __enter__(self) -> SwapClaim:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


class SwapRunner:
    """Runs swaps on the head node, one at a time; its claim is the cluster's one busy flag."""

    def __init__(
        self,
        head: SshNode,
        api: ServiceApi,
        repo_path: str,
        container: str = VLLM_CONTAINER,
        *,
        port: int | None = None,
    ) -> None:
        self.head = head
        self.api = api
        self.repo_path = repo_path
        self.container = container
        self.port = port if port is not None else api.endpoints[VLLM].port
        self._claim: SwapClaim | None = None
        self._progress: SwapProgress | None = None

    @property
    def busy(self) -> bool:
        """Whether a swap is claimed (from its request until its caller released it)."""
        return self._claim is not None

    @property
    def target(self) -> str | None:
        """The catalog key the claimed swap goes to; None while idle."""
        return self._claim.model if self._claim is not None else None

    @property
    def progress(self) -> SwapProgress | None:
        """The running swap's latest progress, else the last finished one's (None before any)."""
        return self._progress

    def claim(self, model: str) -> SwapClaim:
        """Reserve the runner for a swap to `model`; SwapInProgress if another holds it."""
        if self._claim is not None:
            raise SwapInProgress(self._claim.model)
        self._claim = SwapClaim(self, model)
        return self._claim

    def release(self, claim: SwapClaim) -> None:
        """Free the runner if `claim` holds it (a stale claim changes nothing)."""
        if self._claim is claim:
            self._claim = None

    async def swap(
        self,
        entry: ModelEntry,
        *,
        nodes: Sequence[str],
        timeout: float,  # noqa: ASYNC109  (the deadline is part of the API)
        on_progress: ProgressCallback | None = None,
        claim: SwapClaim | None = None,
    ) -> SwapResult:
        """Swap to `entry`; returns when vLLM serves it.

        Raises SwapInProgress at once if a swap is running, SwapFailed on timeout, crash,
        container exit or SSH error (the SSH error chained as `__cause__`), InvalidInput
        if the entry cannot be launched on these nodes. `nodes` are the cluster's hosts,
        head first. With a `claim` taken beforehand the caller keeps it (and releases it
        when it is done); without one the swap claims the runner for its own duration.
        """
        if claim is None:
            with self.claim(entry.key) as own:
                return await self.swap(
                    entry, nodes=nodes, timeout=timeout, on_progress=on_progress, claim=own
                )
        if claim is not self._claim or claim.model != entry.key:
            raise SwapInProgress(self.target or claim.model)

        def record(progress: SwapProgress) -> None:
            self._progress = progress
            if on_progress is not None:
                on_progress(progress)

        return await _Swap(self, entry, nodes, record).run(timeout)


class _Swap:
    """The state of one swap (kept off SwapRunner so nothing leaks between swaps)."""

    def __init__(
        self,
        runner: SwapRunner,
        entry: ModelEntry,
        nodes: Sequence[str],
        on_progress: ProgressCallback,
    ) -> None:
        self.runner = runner
        self.entry = entry
        # Build the command first: bad input fails before anything is stopped.
        self.launch = launch_model(entry, port=runner.port, nodes=nodes, repo_path=runner.repo_path)
        self.on_progress = on_progress
        self.started_at = datetime.now(UTC)
        self.t0 = time.monotonic()
        self.lines: deque[str] = deque(maxlen=LAST_LINES)

    def report(self, status: SwapStatus, line: str | None = None) -> None:
        progress = SwapProgress(
            status=status,
            model=self.entry.key,
            started_at=self.started_at,
            elapsed=time.monotonic() - self.t0,
            last_line=line if line is not None else (self.lines[-1] if self.lines else None),
            repo_id=self.entry.repo_id,
            log_tail=tuple(text[:LOG_LINE_CHARS] for text in self.lines),
        )
        try:
            self.on_progress(progress)
        except Exception:
            _LOGGER.exception("Swap progress callback failed")

    def fail(
        self, reason: str, cause: SwapFailureCause = "error", detail: str | None = None
    ) -> SwapFailed:
        self.report("failed")
        _LOGGER.warning("Swap to %s failed: %s", self.entry.key, reason)
        return SwapFailed(self.entry.key, reason, list(self.lines), cause=cause, detail=detail)

    async def run(self, timeout: float) -> SwapResult:  # noqa: ASYNC109
        head = self.runner.head
        try:
            async with asyncio.timeout(timeout):
                self.report("stopping")
                await head.run(stop_cluster(self.runner.repo_path), timeout=timeout)
                since = datetime.now(UTC)
                self.report("starting")
                await head.run(self.launch, timeout=timeout)
                self.report("loading")
                await self.follow_log_while_serving(since)
                await self.wait_healthy()
        except TimeoutError:
            raise self.fail(f"timeout after {timeout:g} s", "timeout", f"{timeout:g}") from None
        except SwapFailed:
            raise
        except SparkError as err:
            raise self.fail(str(err), *swap_error_cause(err)) from err
        # Report first: the caller refreshes its state on "ready"; the model list can wait.
        self.report("ready")
        duration = time.monotonic() - self.t0
        try:
            served = (await self.runner.api.vllm_state()).models
        except ServiceUnreachable:
            served = []
        return SwapResult(
            model=self.entry.key,
            repo_id=self.entry.repo_id,
            duration=duration,
            served_models=served,
        )

    async def follow_log_while_serving(self, since: datetime) -> None:
        """`follow_log`, failing early when vLLM's server exits without a line saying why (the
        kernel's OOM killer): its container runs `sleep infinity` on, so the log never ends."""
        follow = asyncio.ensure_future(self.follow_log(since))
        watch = asyncio.ensure_future(self.watch_server())
        try:
            await asyncio.wait({follow, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (follow, watch):
                task.cancel()
            await asyncio.gather(follow, watch, return_exceptions=True)
        if follow.done() and not follow.cancelled():
            follow.result()  # the startup line came (or the follow's own failure)
        else:
            watch.result()  # SwapFailed: the server exited

    async def watch_server(self) -> None:
        """Raise SwapFailed once vLLM's port, having accepted connections since the launch,
        refuses them: the server is gone. Before it binds its port (seconds of imports after
        the launch) a refusal is expected and says nothing."""
        bound = False
        while True:
            await asyncio.sleep(SERVER_CHECK_INTERVAL)
            try:
                await self.runner.api.vllm_healthy()
            except ServiceUnreachable as err:
                if err.refused and bound:
                    raise self.fail(
                        "vLLM exited before startup completed", "server_exited", ""
                    ) from err
                bound = bound or not err.refused  # a timeout: connected, no answer yet
            else:
                bound = True  # answered (503 while loading)

    async def follow_log(self, since: datetime) -> None:
        """Return once the startup line appears; SwapFailed on a crash or container exit.

        A load takes minutes on real hardware, so a dropped SSH connection while following
        is healed by reconnecting and following again from `since` (already-seen lines are
        skipped), up to FOLLOW_RECONNECTS times.
        """
        runner = self.runner
        seen = 0  # lines already consumed, when the follow has to be reopened
        reconnects = 0
        in_traceback = False
        while True:
            command = docker_logs(runner.container, follow=True, since=since)
            count = 0
            stream = runner.head.stream_lines(command)
            try:
                async with contextlib.aclosing(stream):
                    async for line in stream:
                        count += 1
                        if count <= seen:
                            continue
                        seen = count
                        self.lines.append(line)
                        self.report("loading", line)
                        if STARTUP_COMPLETE in line:
                            return
                        if _TRACEBACK in line:
                            in_traceback = True
                        elif (in_traceback or "RuntimeError" in line) and _ERROR_LINE.search(line):
                            raise self.fail(f"crashed: {line.strip()}", "crashed", line.strip())
            except CannotConnect:
                reconnects += 1
                if reconnects > FOLLOW_RECONNECTS:
                    raise
                _LOGGER.debug("Lost the log follow of %s; following again", self.entry.key)
                await asyncio.sleep(FOLLOW_RETRY_DELAY)
                continue
            # The follow ended: the container stopped, or it had not started yet.
            if not await self.container_running():
                if in_traceback:
                    raise self.fail("crashed before startup completed", "crashed_early", "")
                raise self.fail("container exited before startup completed", "exited", "")
            await asyncio.sleep(FOLLOW_RETRY_DELAY)

    async def container_running(self) -> bool:
        result = await self.runner.head.run(
            docker_inspect(self.runner.container), check=False, timeout=30
        )
        if result.exit_status != 0:
            return False
        return parse_docker_inspect(result.stdout).running

    async def wait_healthy(self) -> None:
        """Poll `/health` from the moment the startup line appeared until it answers 200."""
        while True:
            with contextlib.suppress(ServiceUnreachable):
                if await self.runner.api.vllm_healthy():
                    return
            await asyncio.sleep(HEALTH_POLL_INTERVAL)
