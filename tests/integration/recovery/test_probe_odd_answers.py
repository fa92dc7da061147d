"""Deep probes against services that answer oddly: a real HTTP server on loopback whose /health
is fine and whose work endpoints misbehave the way real ones do (a refused request, an empty
synthesis, no model loaded, a connection cut mid-request, plain text instead of JSON)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from custom_components.spark_control.sparklib.probes import DeepProber
from custom_components.spark_control.sparklib.recovery import ServiceHealth

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _ok(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _refuse(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"error": {"message": "unsupported language"}}, status=400)


async def _plain_text(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text="health check")


async def _cut(request: web.Request) -> web.Response:
    await request.read()
    assert request.transport is not None
    request.transport.close()  # the process died on this request
    return web.Response()


async def _empty_audio(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=b"", content_type="audio/wav")


async def _no_models(_request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": []})


@pytest.fixture
async def odd_service() -> AsyncIterator[Callable[[str, Handler], Awaitable[str]]]:
    """Start a server whose health endpoints answer 200 and whose `path` runs `handler`."""
    servers: list[TestServer] = []

    async def start(path: str, handler: Handler) -> str:
        app = web.Application()
        app.router.add_get("/health", _ok)
        app.router.add_get("/v1/health/ready", _ok)
        method = "GET" if path == "/v1/models" else "POST"
        app.router.add_route(method, path, handler)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    yield start
    for server in servers:
        await server.close()


@pytest.mark.parametrize(
    ("service", "path", "handler", "health", "detail"),
    [
        (
            "parakeet",
            "/v1/audio/transcriptions",
            _refuse,
            ServiceHealth.HEALTHY,
            "refused the probe (400)",
        ),
        (
            "parakeet",
            "/v1/audio/transcriptions",
            _plain_text,
            ServiceHealth.HEALTHY,
            '"health check"',
        ),
        (
            "parakeet",
            "/v1/audio/transcriptions",
            _cut,
            ServiceHealth.WEDGED,
            "connection dropped mid-request",
        ),
        ("magpie", "/v1/audio/synthesize", _empty_audio, ServiceHealth.WEDGED, "no audio"),
        ("vllm", "/v1/models", _no_models, ServiceHealth.DOWN, "no model loaded"),
    ],
)
async def test_odd_answers_are_classified(
    odd_service: Callable[[str, Handler], Awaitable[str]],
    session: aiohttp.ClientSession,
    probe_clip: bytes,
    service: str,
    path: str,
    handler: Handler,
    health: ServiceHealth,
    detail: str,
) -> None:
    """A refusal of our request is not a wedge; an empty synthesis or a cut connection is;
    a vLLM without a model is down; a non-JSON transcript is still a transcript."""
    url = await odd_service(path, handler)
    # Every odd answer comes at once: the deadline is only a guard, one a loaded machine keeps.
    prober = DeepProber(session, {service: url}, clip_wav=probe_clip, timeout=30)
    result = await prober.probe(service)
    assert result.health is health
    assert detail in result.detail
