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
import subprocess
import sys
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
            "log_level": "warning",
            **options,
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def __aenter__(self) -> GatewayProcess:
        config = self.work / "gateway.json"
        config.write_text(json.dumps(self.options))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "spark_gateway", "--config", str(config)],
            env={**os.environ, "PYTHONPATH": str(ROOT / "addon")},
            cwd=self.work,
        )
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    async with session.get(self.url + "/health") as resp:
                        if resp.status == 200:
                            return self
                except aiohttp.ClientError:
                    pass
                if not self.alive:
                    raise RuntimeError("the gateway exited during start-up")
                await asyncio.sleep(0.05)
        raise RuntimeError("the gateway did not start in 15 s")

    async def __aexit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, 20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                await asyncio.to_thread(self.process.wait, 5)

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
