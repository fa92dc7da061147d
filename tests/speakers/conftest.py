"""Fixtures for the speaker tests: the simulator and gateways on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from spark_gateway.app import create_app
from spark_gateway.config import GatewayConfig, Timeouts
from tests.sim import SimCluster, SimConfig

API_KEY = "sk-speakers-test-0123456789"
# The shipped name threshold (0.10) was chosen on the tuning voices to name no stranger, and
# names few enrolled people with the simulator's weak encoder; the end-to-end tests check the
# naming paths at a threshold where this encoder separates their two voices (measured:
# these two voices lie 0.2-0.25 from their own prints and farther from each other).
NAME_THRESHOLD = 0.25


@pytest.fixture
async def sim() -> AsyncIterator[SimCluster]:
    """A one-node simulated cluster (Parakeet with real recognition and diarization)."""
    async with SimCluster(SimConfig(nodes=1)) as cluster:
        yield cluster


@dataclass
class RunningGateway:
    server: TestServer
    config: GatewayConfig

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {API_KEY}"}

    @property
    def app(self) -> web.Application:
        return self.server.app


GatewayFactory = Callable[..., Awaitable[RunningGateway]]


@pytest.fixture
async def start_gateway(tmp_path: Path) -> AsyncIterator[GatewayFactory]:
    """Start gateways configured by keyword overrides; all closed at teardown."""
    servers: list[TestServer] = []

    async def start(**overrides: Any) -> RunningGateway:
        base = GatewayConfig(
            api_keys=(API_KEY,),
            data_dir=tmp_path / "data",
            timeouts=Timeouts(connect=2, chat=20, stream_idle=10, transcription=60,
                              diarization=60, speech=30, health=2),
        )  # fmt: skip
        config = replace(base, **overrides)
        server = TestServer(create_app(config), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return RunningGateway(server, config)

    yield start
    for server in servers:
        await server.close()
