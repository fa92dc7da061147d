"""One HTTP service's listening port, opened and closed as its container and faults dictate.

The port number stays the same for the whole run (bound once to port 0, then re-bound), so a
closed port really refuses connections and a re-opened one is where clients expect it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable

from aiohttp import web

AppFactory = Callable[[], web.Application]


class ServicePort:
    """Serve a fresh aiohttp app on a fixed loopback port while `should_listen()` is true."""

    def __init__(self, host: str, app_factory: AppFactory, should_listen: Callable[[], bool]):
        self.host = host
        self._app_factory = app_factory
        self._should_listen = should_listen
        self._sock = self._bind(0)
        self.port: int = self._sock.getsockname()[1]
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def listening(self) -> bool:
        return self._server is not None

    def _bind(self, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, port))
        return sock

    def reconcile(self) -> asyncio.Task[None]:
        """Bring the port in line with `should_listen()`.

        Closing the listener happens before this returns (new connections are refused at once);
        the returned task finishes dropping open connections or opening the port.
        """
        if not self._should_listen() and self._server is not None:
            self._server.close()
        task = asyncio.get_running_loop().create_task(self._apply())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _apply(self) -> None:
        async with self._lock:
            if self._should_listen():
                await self._open()
            else:
                await self._close()

    async def _open(self) -> None:
        if self._server is not None:
            return
        # A fresh app per start, like a restarted process: no state survives in the app itself.
        runner = web.AppRunner(self._app_factory(), shutdown_timeout=0.2, access_log=None)
        await runner.setup()
        assert runner.server is not None
        sock = self._sock if self._sock.fileno() != -1 else self._bind(self.port)
        self._sock = sock
        sock.listen(128)
        sock.setblocking(False)
        self._server = await asyncio.get_running_loop().create_server(runner.server, sock=sock)
        self._runner = runner

    async def _close(self) -> None:
        server, runner = self._server, self._runner
        self._server, self._runner = None, None
        if server is not None:
            server.close()
        if runner is not None:
            # Drops keep-alive and in-flight connections, as a stopped process would.
            await runner.cleanup()
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)

    async def shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        async with self._lock:
            await self._close()
        self._sock.close()
