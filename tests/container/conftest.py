"""Fixtures: the real server app over fake NeMo models, on a loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from parakeet_server.config import ServerConfig
from parakeet_server.models import Loaders, ModelRegistry
from parakeet_server.server import create_app
from tests.container.fakes import FakeAsr, FakeSortformer, FakeTitanet


@dataclass
class Running:
    server: TestServer
    asr: FakeAsr
    sortformer: FakeSortformer
    titanet: FakeTitanet
    load_counts: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    async def post(self, path: str, data: bytes | None, **fields: str) -> tuple[int, Any]:
        form = aiohttp.FormData()
        if data is not None:
            form.add_field("file", data, filename="a.wav", content_type="audio/wav")
        else:
            form.add_field("other", b"x", filename="x.txt")
        for key, value in fields.items():
            form.add_field(key, value)
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url + path, data=form) as resp,
        ):
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, await resp.text()


Factory = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start_server() -> AsyncIterator[Factory]:
    servers: list[TestServer] = []

    async def start(
        *,
        sortformer: FakeSortformer | None = None,
        asr: FakeAsr | None = None,
        titanet: FakeTitanet | None = None,
        failing_loader: str | None = None,
        **overrides: Any,
    ) -> Running:
        asr, sf = asr or FakeAsr(), sortformer or FakeSortformer()
        titanet = titanet or FakeTitanet()
        counts = {"asr": 0, "diarization": 0, "embedding": 0}

        def loader(name: str, model: Any) -> Callable[[], Any]:
            def load() -> Any:
                counts[name] += 1
                if name == failing_loader:
                    raise OSError("checkpoint download failed")
                return model

            return load

        registry = ModelRegistry(
            Loaders(
                loader("asr", asr),
                loader("diarization", sf),
                loader("embedding", titanet),
                gpu_memory=lambda: {"free_bytes": 1, "total_bytes": 2, "allocated_bytes": 1},
            )
        )
        config = replace(ServerConfig(), **overrides)
        server = TestServer(create_app(config, registry), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return Running(server, asr, sf, titanet, counts)

    yield start
    for server in servers:
        await server.close()
