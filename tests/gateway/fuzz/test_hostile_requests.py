"""Hostile JSON and headers against every route of the real gateway: always a 4xx JSON error.

Routes are read from the running app, so a route added later is fuzzed too. Seeds are fixed,
so a failure replays exactly.
"""

from __future__ import annotations

import asyncio
import json
import random

import aiohttp
import pytest
from aiohttp import web

from tests.gateway.conftest import RunningGateway

SEED = 11
# Bodies a careless or hostile client sends to a JSON route.
HOSTILE_JSON: dict[str, bytes] = {
    "nested lists x100000": b"[" * 100_000,
    "nested objects x50000": b'{"a":' * 50_000,
    "nested then closed": b"[" * 5000 + b"]" * 5000,
    "not JSON": b"\xff\xfe\x00garbage",
    "a bare number": b"1e999999",
    "a string": b'"text"',
    "truncated object": b'{"model": "x", "messages": [',
    "NUL inside": b'{"input": "a\x00b"}',
    "lone surrogate": b'{"input": "\\ud800"}',
    "duplicate keys": b'{"stream": true, "stream": "yes"}',
}


def routes(app: web.Application) -> list[tuple[str, str]]:
    """(method, path) of every route, with a concrete value for path parameters."""
    found: set[tuple[str, str]] = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "OPTIONS", "*"):
            continue
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter", "")
        found.add((route.method, path.replace("{model}", "fuzz")))
    return sorted(found)


def random_json(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(7 if depth < 4 else 4)
    if kind == 0:
        return rng.choice([None, True, False, 0, -1, 2**70, 1e308, float("nan")])
    if kind == 1:
        return "".join(
            chr(rng.choice([0, 0x1F, 0x41, 0x7F, 0xE9, 0x4E2D, 0x1F600]))
            for _ in range(rng.randrange(20))
        )
    if kind == 2:
        return "x" * rng.choice([0, 1, 4000, 70_000])
    if kind == 3:
        return rng.uniform(-1e6, 1e6)
    if kind == 4:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["model", "input", "voice", "messages", "stream", "speed", "response_format",
            "service", "ok", "input_audio", "data", "language", "max_tokens"]  # fmt: skip
    return {rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.randrange(6))}


async def expect_client_error(resp: aiohttp.ClientResponse, what: str) -> None:
    assert resp.status < 500, (what, resp.status, await resp.text())
    if resp.status >= 400:
        assert resp.content_type == "application/json", what
        assert "message" in (await resp.json())["error"], what


async def test_hostile_json_on_every_route(gateway: RunningGateway) -> None:
    async with aiohttp.ClientSession(headers=gateway.headers()) as session:
        for method, path in routes(gateway.app):
            if method != "POST":
                continue
            for name, body in HOSTILE_JSON.items():
                async with session.post(
                    gateway.url + path, data=body, headers={"Content-Type": "application/json"}
                ) as resp:
                    await expect_client_error(resp, f"{path}: {name}")
                    assert resp.status >= 400, (path, name)


async def test_random_json_documents_on_every_route(gateway: RunningGateway) -> None:
    rng = random.Random(SEED)
    posts = [path for method, path in routes(gateway.app) if method == "POST"]
    async with aiohttp.ClientSession(headers=gateway.headers()) as session:
        for _ in range(120):
            path = rng.choice(posts)
            body = json.dumps(random_json(rng), allow_nan=True).encode()
            async with session.post(
                gateway.url + path, data=body, headers={"Content-Type": "application/json"},
                timeout=aiohttp.ClientTimeout(total=30),
            ) as resp:  # fmt: skip
                await expect_client_error(resp, f"{path}: {body[:200]!r}")


RAW_KEYS: dict[str, bytes] = {
    "Latin-1 bearer": b"Authorization: Bearer sk-\xe9\xe9\xe9",
    "invalid UTF-8 bearer": b"Authorization: Bearer \xff\xfe\xfd",
    "Latin-1 x-api-key": b"x-api-key: cl\xe9",
    "bare scheme": b"Authorization: Bearer",
    "huge key": b"Authorization: Bearer " + b"k" * 7000,
}


async def raw_request(gateway: RunningGateway, method: str, path: str, header: bytes) -> int:
    """Send header bytes no HTTP client library would; return the status code."""
    assert gateway.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.server.port)
    try:
        writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: gateway\r\nContent-Length: 2\r\n".encode()
            + b"Content-Type: application/json\r\nConnection: close\r\n"
            + header
            + b"\r\n\r\n{}"
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 30)
        await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    return int(status_line.split()[1])


async def test_undecodable_key_headers_are_401_on_every_protected_route(
    gateway: RunningGateway,
) -> None:
    for method, path in routes(gateway.app):
        if not path.startswith(("/v1/", "/api/")):
            continue
        keyless = await raw_request(gateway, method, path, b"X-Nothing: 1") != 401
        for name, header in RAW_KEYS.items():
            status = await raw_request(gateway, method, path, header)
            if keyless and name == "bare scheme":  # no key sent: the listings answer anyway
                assert status < 400, (method, path, status)
                continue
            assert status == 401, (method, path, name, status)
        # Control bytes in a header never reach the app: the parser refuses them (400).
        status = await raw_request(gateway, method, path, b"x-api-key: \x01\x02")
        assert status == 400, (method, path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Hello\x00world.", "control character U+0000"),
        ("Ring \x07 the bell.", "control character U+0007"),
        ("x" * 4000, "4000-character word"),
        ("Visit " + "a" * 300 + ".", "301-character word"),
    ],
)
async def test_unspeakable_text_is_400(gateway: RunningGateway, text: str, message: str) -> None:
    status, body = await gateway.post(
        "/v1/audio/speech", json={"model": "tts-1", "voice": "alloy", "input": text}
    )
    assert status == 400, body
    assert body["error"]["code"] == "invalid_input"
    assert message in body["error"]["message"]


async def test_a_paragraph_without_spaces_is_not_one_word(gateway: RunningGateway) -> None:
    """Found on the demo: 550 characters of Japanese were refused as "a 550-character word".
    Chinese and Japanese put no spaces between words; their characters are not one word, while
    a long run of Latin letters among them still is."""
    paragraph = "今日はとても良い天気ですね。散歩に行きましょう。" * 25  # 600 characters
    async with (
        aiohttp.ClientSession(headers=gateway.headers()) as session,
        session.post(
            f"{gateway.url}/v1/audio/speech",
            json={"model": "tts-1", "voice": "alloy", "input": paragraph, "response_format": "wav"},
        ) as resp,
    ):
        assert resp.status == 200, await resp.text()
        assert resp.content_type == "audio/wav"
        assert len(await resp.read()) > 44  # more than a WAV header
    status, body = await gateway.post(
        "/v1/audio/speech",
        json={"model": "tts-1", "voice": "alloy", "input": "今日は" + "a" * 300 + "です。"},
    )
    assert status == 400, body
    assert "300-character word" in body["error"]["message"]
