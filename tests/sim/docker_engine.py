"""What the Docker daemon does to a container on start/stop/restart (timing and log lines)."""

from __future__ import annotations

import asyncio

from tests.sim.config import SimConfig
from tests.sim.containers import Container


class DockerEngine:
    """Container lifecycle with realistic delays; services follow via the container's hooks."""

    def __init__(self, config: SimConfig) -> None:
        self._config = config
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, container: Container) -> asyncio.Lock:
        return self._locks.setdefault(container.name, asyncio.Lock())

    async def start(self, container: Container) -> None:
        async with self._lock(container):
            if not container.running:
                container.mark_running()

    async def stop(self, container: Container) -> None:
        """`docker stop`; a container run with `--rm` is removed once it stopped."""
        async with self._lock(container):
            await self._stop(container)
            if container.auto_remove:
                container.removed = True

    async def run(self, container: Container) -> None:
        """`docker run` of a container whose name is free again (removed): created afresh."""
        async with self._lock(container):
            container.recreate()
            container.mark_running()

    async def _stop(self, container: Container) -> None:
        if not container.running:
            return
        container.log("INFO:     Shutting down")
        await asyncio.sleep(self._config.stop_delay)
        container.log("INFO:     Application shutdown complete.")
        container.mark_exited(0)

    async def restart(self, container: Container) -> None:
        """`docker restart`: stop and start the same container (Docker keeps one run with
        `--rm` across a restart)."""
        async with self._lock(container):
            container.restarts += 1
            await self._stop(container)
            container.mark_running()
