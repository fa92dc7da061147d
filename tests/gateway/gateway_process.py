"""The gateway as it runs in the add-on: its own process, measured from outside.

Used where the process itself is under test: the fuzz suite (a crash ends the process, so
the test sees it) and the memory benchmark (resident memory of the gateway and the decoder
processes it forks).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import psutil
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.paths import REPO

ROOT = REPO
MIB = 1024 * 1024
LISTENING = "Running on http"  # what aiohttp's run_app logs (at info) once the port is open


async def until_listening(output: asyncio.StreamReader, lines: list[str]) -> None:
    """Read the gateway's log into `lines` until it says it listens; RuntimeError if it ends
    first. The deadline allows for a loaded machine (imports, the decoders' fork server)."""
    async with asyncio.timeout(30):
        while line := await output.readline():
            lines.append(line.decode(errors="replace"))
            if LISTENING in lines[-1]:
                return
    raise RuntimeError("the gateway exited during start-up:\n" + "".join(lines))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GatewayProcess:
    """`python -m spark_gateway --config FILE` on a free loopback port, stopped on exit."""

    def __init__(self, work: Path, api_key: str, **options: Any) -> None:
        self.work = work
        self.api_key = api_key
        self.port = free_port()
        self.options = {
            "host": "127.0.0.1",
            "port": self.port,
            "api_keys": [api_key],
            "data_dir": str(work / "data"),
            "log_level": "info",  # the line that says it listens
            **options,
        }
        self.process: asyncio.subprocess.Process | None = None
        self.log: deque[str] = deque(maxlen=200)  # the latest lines, for failure messages
        self._reading: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    @property
    def alive(self) -> bool:
        """Whether the process runs, exact even before the event loop has noticed an exit."""
        if self.process is None or self.process.returncode is not None:
            return False
        try:  # look without reaping: the event loop's child watcher does that
            ended = os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return False
        return ended is None

    async def __aenter__(self) -> GatewayProcess:
        config = self.work / "gateway.json"
        config.write_text(json.dumps(self.options))
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "spark_gateway", "--config", str(config),
            env={**os.environ, "PYTHONPATH": str(ROOT / "addon")}, cwd=self.work,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self.process.stderr is not None
        lines: list[str] = []
        try:
            await until_listening(self.process.stderr, lines)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        self.log.extend(lines)
        self._reading = asyncio.create_task(self._keep_reading(self.process.stderr))
        return self

    async def _keep_reading(self, output: asyncio.StreamReader) -> None:
        """Read the log as it comes, so a full pipe never blocks the gateway."""
        while line := await output.readline():
            self.log.append(line.decode(errors="replace"))

    async def __aexit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process is None:
            return
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 20)
            except TimeoutError:
                self.process.kill()
                await asyncio.wait_for(self.process.wait(), 5)
        if self._reading is not None:
            # Not read to its end: forked decoders may hold the pipe open a moment longer.
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading

    def memory_mib(self) -> float:
        """Proportional resident memory (PSS) of the gateway and every process it started.

        PSS, not RSS: the forked decoders share the fork server's libraries, and summing RSS
        would count those pages once per process.
        """
        assert self.process is not None
        total = 0
        root = psutil.Process(self.process.pid)
        for proc in [root, *root.children(recursive=True)]:
            try:
                total += proc.memory_full_info().pss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return total / MIB

    def memory_by_process(self) -> list[tuple[str, float]]:
        """(role, PSS MiB) of the gateway and each process it started, for reports."""
        assert self.process is not None
        root = psutil.Process(self.process.pid)
        rows = [("gateway", root.memory_full_info().pss / MIB)]
        for proc in root.children(recursive=True):
            try:
                command = " ".join(proc.cmdline())
                role = (
                    "decoder" if proc.ppid() != root.pid
                    else "fork server" if "forkserver" in command
                    else "resource tracker" if "resource_tracker" in command
                    else "other"
                )  # fmt: skip
                rows.append((role, proc.memory_full_info().pss / MIB))
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return rows

    async def in_flight(self, session: aiohttp.ClientSession) -> float:
        """Requests the gateway is still handling, from its own /metrics."""
        async with session.get(self.url + "/metrics") as resp:
            text = await resp.text()
        for line in text.splitlines():
            if line.startswith("spark_gateway_in_flight_requests "):
                return float(line.split()[1]) - 1  # this /metrics request itself
        return 0.0


class SinkParakeet:
    """A Parakeet stand-in that reads every upload to the end, keeps none of it, answers fast.

    The memory measured is then the gateway's own; recognition is not what is under test.
    """

    def __init__(self) -> None:
        self.uploads = 0
        self.bytes_received = 0
        self.server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    async def transcribe(self, request: web.Request) -> web.Response:
        async for chunk in request.content.iter_chunked(256 * 1024):
            self.bytes_received += len(chunk)
        self.uploads += 1
        return web.json_response({"text": "sink"})

    async def diarize(self, request: web.Request) -> web.Response:
        async for chunk in request.content.iter_chunked(256 * 1024):
            self.bytes_received += len(chunk)
        self.uploads += 1
        return web.json_response(
            {"duration": 0.0, "segments": [], "speakers_detected": 0, "fingerprints": {},
             "models": {"diarization": "sink", "embedding": "sink"}}
        )  # fmt: skip

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def __aenter__(self) -> SinkParakeet:
        app = web.Application(client_max_size=4 * 1024 * MIB)
        app.router.add_post("/v1/audio/transcriptions", self.transcribe)
        app.router.add_post("/v1/audio/diarize-chunk", self.diarize)
        app.router.add_post("/v1/audio/diarize", self.diarize)
        app.router.add_get("/health", self.health)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.server is not None:
            await self.server.close()


class PeakSampler:
    """Samples a GatewayProcess's memory every 20 ms in a thread while a block runs."""

    def __init__(self, gateway: GatewayProcess) -> None:
        self.gateway = gateway
        self.peak = 0.0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, await asyncio.to_thread(self.gateway.memory_mib))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.02)

    async def __aenter__(self) -> PeakSampler:
        self.peak = self.gateway.memory_mib()
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        self.peak = max(self.peak, self.gateway.memory_mib())
