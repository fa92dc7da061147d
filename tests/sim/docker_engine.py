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
        async with self._lock(container):
            await self._stop(container)

    async def _stop(self, container: Container) -> None:
        if not container.running:
            return
        container.log("INFO:     Shutting down")
        await asyncio.sleep(self._config.stop_delay)
        container.log("INFO:     Application shutdown complete.")
        container.mark_exited(0)

    async def restart(self, container: Container) -> None:
        async with self._lock(container):
            container.restarts += 1
            await self._stop(container)
            container.mark_running()
