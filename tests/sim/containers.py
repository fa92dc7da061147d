"""Container state shared by the SSH `docker` commands and the HTTP fakes.

A container's state decides whether its service's port answers; its log is what `docker logs`
prints and `docker logs -f` streams.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from tests.sim.docker_time import now

RUNNING = "running"
EXITED = "exited"
RESTARTING = "restarting"
CREATED = "created"


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of container output with the moment Docker received it."""

    at: datetime
    text: str


StateHook = Callable[["Container"], None]


@dataclass(eq=False)
class Container:
    """One Docker container on one simulated node."""

    name: str
    image: str
    node_index: int
    command: str
    state: str = RUNNING
    exit_code: int = 0
    created: datetime = field(default_factory=now)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    restart_count: int = 0  # Docker's RestartCount: restart-policy restarts only, never manual
    restarts: int = 0  # `docker restart` commands this container received (for test assertions)
    starts: int = 0  # every transition into running
    logs: list[LogLine] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # the image's LABELs
    run_flags: list[str] = field(default_factory=list)  # `docker run` options it was created with
    removed: bool = False  # `docker rm`'d: invisible until `docker run` creates it again
    auto_remove: bool = False  # `docker run --rm`: a stop removes it (a restart does not)
    follows: int = 0  # `docker logs -f` subscriptions so far
    _followers: set[asyncio.Queue[LogLine | None]] = field(default_factory=set)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)  # replaced on each change
    _hooks: list[StateHook] = field(default_factory=list)

    @property
    def id(self) -> str:
        return hashlib.sha256(f"{self.name}@{self.node_index}".encode()).hexdigest()

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    @property
    def log_lines(self) -> list[str]:
        return [line.text for line in self.logs]

    def on_state_change(self, hook: StateHook) -> None:
        self._hooks.append(hook)

    def log(self, text: str) -> None:
        """Append a line (several if it contains newlines) and hand it to every follower."""
        for part in text.splitlines() or [""]:
            line = LogLine(now(), part)
            self.logs.append(line)
            for queue in self._followers:
                queue.put_nowait(line)
        self.changed()

    def follow(self) -> asyncio.Queue[LogLine | None]:
        """A queue receiving each new line; None marks that the container stopped."""
        queue: asyncio.Queue[LogLine | None] = asyncio.Queue()
        self._followers.add(queue)
        self.follows += 1
        self.changed()
        return queue

    def unfollow(self, queue: asyncio.Queue[LogLine | None]) -> None:
        self._followers.discard(queue)
        self.changed()

    @property
    def followers(self) -> int:
        """`docker logs -f` sessions subscribed right now."""
        return len(self._followers)

    async def wait_followers(
        self, condition: Callable[[Container], bool], timeout: float = 30
    ) -> None:
        """Wait until `condition(self)` holds about the `docker logs -f` sessions (a follow
        shows only lines logged after it subscribed)."""
        await self.wait_until(condition, timeout)

    async def wait_until(self, condition: Callable[[Container], bool], timeout: float = 30) -> None:
        """Wait until `condition(self)` holds, checked again on every change: the state, a log
        line, a `docker logs -f` subscribing or leaving, or what its process reports through
        `changed()` (vLLM: a request starting or ending). The default deadline allows for a
        loaded machine."""
        async with asyncio.timeout(timeout):
            while not condition(self):
                await self._changed.wait()

    def changed(self) -> None:
        """Wake every `wait_until` to check its condition again."""
        self._changed.set()
        self._changed = asyncio.Event()

    def mark_running(self) -> None:
        self.state = RUNNING
        self.exit_code = 0
        self.started_at = now()
        self.starts += 1
        self._notify()

    def recreate(self) -> None:
        """`docker run` of a removed container: a new one of that name, with an empty log."""
        self.removed = False
        self.state = CREATED
        self.created = now()
        self.started_at = self.finished_at = None
        self.logs = []
        self.changed()

    def mark_exited(self, exit_code: int) -> None:
        self.state = EXITED
        self.exit_code = exit_code
        self.finished_at = now()
        # `docker logs -f` ends when the container stops.
        for queue in self._followers:
            queue.put_nowait(None)
        self._notify()

    def _notify(self) -> None:
        for hook in list(self._hooks):
            hook(self)
        self.changed()
