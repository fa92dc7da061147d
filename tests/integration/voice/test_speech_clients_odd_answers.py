"""The bridges' Parakeet and Magpie clients against a real loopback server that answers the
way a broken or misconfigured speech server does: each answer becomes a clear
`SpeechServiceError` (a 5xx the `SpeechServerFault` that leads to a wedge report)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from custom_components.spark_control.sparklib.voice.errors import (
    SpeechServerFault,
    SpeechServiceError,
)
from custom_components.spark_control.sparklib.voice.magpie import MagpieClient, MagpieVoice
from custom_components.spark_control.sparklib.voice.parakeet import ParakeetClient

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SILENCE_WAV = (
    b"RIFF$\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80>\x00\x00\x00}\x00\x00"
    b"\x02\x00\x10\x00data\x00\x00\x00\x00"
)
MIA = MagpieVoice("Magpie-Multilingual.EN-US.Mia", "en-US")


def _answer(status: int, body: bytes, content_type: str = "application/json") -> Handler:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=status, body=body, content_type=content_type)

    return handler


@pytest.fixture
async def server() -> AsyncIterator[Callable[[str, str, Handler], Awaitable[str]]]:
    servers: list[TestServer] = []

    async def start(method: str, path: str, handler: Handler) -> str:
        app = web.Application()
        app.router.add_route(method, path, handler)
        test_server = TestServer(app, host="127.0.0.1")
        await test_server.start_server()
        servers.append(test_server)
        return str(test_server.make_url("")).rstrip("/")

    yield start
    for test_server in servers:
        await test_server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (400, b'{"error": "bad audio"}', SpeechServiceError, "bad audio"),
        (500, b"CUBLAS_STATUS_EXECUTION_FAILED", SpeechServerFault, "CUBLAS"),
        (200, b"<html>proxy page</html>", SpeechServiceError, "not JSON"),
        (200, b'{"segments": []}', SpeechServiceError, "has no text"),
    ],
)
async def test_parakeet_odd_answers(
    server: Callable[[str, str, Handler], Awaitable[str]],
    session: aiohttp.ClientSession,
    status: int,
    body: bytes,
    error: type[SpeechServiceError],
    message: str,
) -> None:
    url = await server("POST", "/v1/audio/transcriptions", _answer(status, body))
    with pytest.raises(error, match=message) as raised:
        await ParakeetClient(session, url).transcribe(SILENCE_WAV, "en-US")
    assert raised.value.service == "parakeet"


async def test_magpie_voice_list_not_an_object(
    server: Callable[[str, str, Handler], Awaitable[str]], session: aiohttp.ClientSession
) -> None:
    url = await server("GET", "/v1/audio/list_voices", _answer(200, b'["Mia"]'))
    with pytest.raises(SpeechServiceError, match="not a JSON object"):
        await MagpieClient(session, url).list_voices()


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (200, b"not a wav file at all", SpeechServiceError, "bad WAV answer"),
        (422, b"text too long", SpeechServiceError, "HTTP 422: text too long"),
        (503, b"model not ready", SpeechServerFault, "HTTP 503"),
    ],
)
async def test_magpie_synthesis_odd_answers(
    server: Callable[[str, str, Handler], Awaitable[str]],
    session: aiohttp.ClientSession,
    status: int,
    body: bytes,
    error: type[SpeechServiceError],
    message: str,
) -> None:
    url = await server("POST", "/v1/audio/synthesize", _answer(status, body, "audio/wav"))
    with pytest.raises(error, match=message):
        await MagpieClient(session, url).synthesize("Hello.", MIA)
