"""Fixtures for the gateway tests: real servers on loopback (gateway, stand-ins for HA)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.typedefs import Handler
from aiohttp.web_runner import BaseRunner
from openai import AsyncOpenAI

from spark_gateway.app import create_app
from spark_gateway.appkeys import API_KEYS
from spark_gateway.config import GatewayConfig, Timeouts
from spark_gateway.unparsable import GatewayRunner
from tests.sim import SimCluster, SimConfig

API_KEY = "sk-test-0123456789"
SPOKEN = "The quick brown fox jumps over the lazy dog."
SHORT_SPOKEN = "Seven green apples."


@dataclass
class FinishedRequests:
    """The requests a gateway has finished, as `(method, path, status)`, 499 for a client that
    left; recorded by a middleware outside the gateway's own, so when one is recorded the
    gateway's middlewares are done with it (metrics counted, concurrency slot freed)."""

    seen: list[tuple[str, str, int]] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @web.middleware
    async def record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except BaseException as err:
            self._add(request, _status_of(err))
            raise
        self._add(request, response.status)
        return response

    def _add(self, request: web.Request, status: int) -> None:
        self.seen.append((request.method, request.path, status))
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(
        self, method: str, path: str, status: int | None = None, *, timeout: float = 30
    ) -> int:
        """Wait until a `method path` request has finished (with `status`, when given); its
        status. The deadline allows for a loaded machine."""
        async with asyncio.timeout(timeout):
            while True:
                for seen_method, seen_path, seen_status in self.seen:
                    if (seen_method, seen_path) == (method, path) and status in (None, seen_status):
                        return seen_status
                await self._changed.wait()


def _status_of(err: BaseException) -> int:
    if isinstance(err, web.HTTPException):
        return err.status
    if isinstance(err, (asyncio.CancelledError, ConnectionResetError)):
        return 499  # the client left
    return 500


class GatewayTestServer(TestServer):
    """aiohttp's TestServer serving through the gateway's own runner, as `python -m
    spark_gateway` does (requests the parser refuses get the gateway's JSON 400)."""

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        return GatewayRunner(self.app, **kwargs)


@dataclass
class RunningGateway:
    """A gateway listening on 127.0.0.1 and what a client needs to reach it."""

    server: TestServer
    config: GatewayConfig
    api_key: str
    finished: FinishedRequests

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def app(self) -> web.Application:
        return self.server.app

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    async def post(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        """POST with the API key; the status and the JSON (or text) body."""
        async with (
            aiohttp.ClientSession(headers=self.headers()) as session,
            session.post(f"{self.url}{path}", **kwargs) as resp,
        ):
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, await resp.text()


GatewayFactory = Callable[..., Awaitable[RunningGateway]]


TIMEOUTS = Timeouts(
    connect=2, chat=20, stream_idle=10, transcription=30, diarization=30, speech=30, health=2
)


@contextlib.asynccontextmanager
async def gateways(tmp_path: Path, **defaults: Any) -> AsyncIterator[GatewayFactory]:
    """Start gateways configured by keyword overrides (over this suite's `defaults`) and an
    optional `clock` for the listing caches; all stopped on leaving, whatever happened."""
    servers: list[TestServer] = []

    async def start(
        *, clock: Callable[[], float] = time.monotonic, **overrides: Any
    ) -> RunningGateway:
        base = GatewayConfig(
            api_keys=(API_KEY,),
            data_dir=tmp_path / "data",
            hold_timeout_s=1.0,  # a vLLM made unreachable on purpose answers 503 soon
            timeouts=TIMEOUTS,
        )
        config = replace(base, **{**defaults, **overrides})
        app = create_app(config, clock=clock)
        finished = FinishedRequests()
        app.middlewares.insert(0, finished.record)
        server = GatewayTestServer(app, host="127.0.0.1", handler_cancellation=True)
        await server.start_server()
        servers.append(server)
        keys = server.app[API_KEYS]  # configured, or the one generated on first start
        return RunningGateway(server, config, keys[0] if keys else "", finished)

    try:
        yield start
    finally:
        for server in servers:
            await server.close()


@pytest.fixture
async def start_gateway(tmp_path: Path) -> AsyncIterator[GatewayFactory]:
    """Start gateways with a config built from keyword overrides; all stopped at teardown."""
    async with gateways(tmp_path) as start:
        yield start


@dataclass
class FakeHomeAssistant:
    """A real HTTP server standing in for HA's REST API and Supervisor's discovery endpoint."""

    token: str
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    discoveries: list[dict[str, Any]] = field(default_factory=list)
    unauthorized: int = 0
    server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def _authorized(self, request: web.Request) -> bool:
        ok = request.headers.get("Authorization") == f"Bearer {self.token}"
        if not ok:
            self.unauthorized += 1
        return ok

    async def fire_event(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"message": "Unauthorized"}, status=401)
        event_type = request.match_info["event_type"]
        self.events.append((event_type, await request.json()))
        return web.json_response({"message": f"Event {event_type} fired."})

    async def discovery(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"result": "error", "message": "denied"}, status=401)
        self.discoveries.append(await request.json())
        return web.json_response({"result": "ok", "data": {"uuid": "d1c0ffee"}})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/events/{event_type}", self.fire_event)
        app.router.add_post("/core/api/events/{event_type}", self.fire_event)
        app.router.add_post("/discovery", self.discovery)
        return app


@pytest.fixture
async def fake_ha() -> AsyncIterator[FakeHomeAssistant]:
    """HA's REST API (at /api) and Supervisor (at / and /core/api) on one loopback server."""
    ha = FakeHomeAssistant(token="ha-token-abc")
    ha.server = TestServer(ha.app(), host="127.0.0.1")
    await ha.server.start_server()
    yield ha
    await ha.server.close()


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """Real English speech (flite), 16 kHz mono WAV."""
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    subprocess.run(
        ["flite", "-voice", "slt", "-t", SPOKEN, "-o", str(path)],
        check=True,
    )
    return path.read_bytes()


@pytest.fixture(scope="session")
def short_wav(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A one-second phrase, for tests about formats rather than recognition quality."""
    path = tmp_path_factory.mktemp("speech") / "short.wav"
    subprocess.run(["flite", "-voice", "slt", "-t", SHORT_SPOKEN, "-o", str(path)], check=True)
    return path.read_bytes()


@pytest.fixture
async def sim() -> AsyncIterator[SimCluster]:
    """The simulated GPU cluster (fast token rate so chat tests stay quick)."""
    async with SimCluster(SimConfig(token_rate=2000.0, load_seconds=0.1)) as cluster:
        yield cluster


@pytest.fixture
async def gateway(
    sim: SimCluster, start_gateway: GatewayFactory, fake_ha: FakeHomeAssistant
) -> RunningGateway:
    """A gateway in front of the simulator, reporting to the fake HA."""
    return await start_gateway(
        vllm_url=sim.vllm.url,
        parakeet_url=sim.parakeet.url,
        magpie_url=sim.magpie.url,
        ha_url=fake_ha.url,  # HA's own URL, as a user types it; /api is added
        ha_token=fake_ha.token,
    )


@pytest.fixture
async def client(gateway: RunningGateway) -> AsyncIterator[AsyncOpenAI]:
    """The official OpenAI SDK pointed at the gateway (no retries: tests see every status)."""
    openai_client = AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=gateway.api_key, max_retries=0
    )
    yield openai_client
    await openai_client.close()
