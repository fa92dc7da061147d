"""A body trickled a few bytes at a time gets 408 and gives its request slot back; a
connection that never completes its first request head is closed.

Found on the demo: two clients sending an upload's body at 5 bytes/s held both speaker slots
for as long as they liked (every other speaker request got 429), and 64 would have done the
same to chat. The gateway now gives a body `timeouts.body` seconds plus one per 500 bytes. A
connection sending half a request head was kept open for as long as the client liked (200 s
tried); it now has `timeouts.body` seconds to send it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace

import aiohttp
import pytest

from spark_gateway.body_deadline import MIN_BYTES_PER_S
from spark_gateway.config import ConcurrencyBudgets
from tests.gateway.conftest import TIMEOUTS, GatewayFactory, RunningGateway
from tests.sim import SimCluster

GRACE_S = 1.0
BOUNDARY = "slowly"


def _head(gateway: RunningGateway, path: str, content_type: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: gateway\r\n"
        f"Authorization: Bearer {gateway.api_key}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


async def _read_answer(reader: asyncio.StreamReader) -> tuple[bytes, dict[bytes, bytes], dict]:
    head = await reader.readuntil(b"\r\n\r\n")
    headers = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:] if b": " in line)
    body = json.loads(await reader.readexactly(int(headers[b"Content-Length"])))
    return head.split(b"\r\n", 1)[0], headers, body


async def _identify(gateway: RunningGateway, clip: bytes) -> int:
    form = aiohttp.FormData()
    form.add_field("file", clip, filename="clip.wav", content_type="audio/wav")
    status, _ = await gateway.post("/api/speakers/identify", data=form)
    return status


@pytest.fixture
async def one_speaker_slot(sim: SimCluster, start_gateway: GatewayFactory) -> RunningGateway:
    return await start_gateway(
        vllm_url=sim.vllm.url,
        parakeet_url=sim.parakeet.url,
        magpie_url=sim.magpie.url,
        concurrency=ConcurrencyBudgets(speakers=1),
        timeouts=replace(TIMEOUTS, body=GRACE_S),
    )


@pytest.mark.parametrize(
    ("path", "content_type", "first_bytes"),
    [
        (
            "/api/speakers/identify",
            f"multipart/form-data; boundary={BOUNDARY}",
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            'filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\nRIFF'.encode(),
        ),
        ("/v1/chat/completions", "application/json", b'{"model": "current", "messages": ['),
    ],
    ids=["upload", "chat"],
)
async def test_a_trickled_body_gets_408_and_frees_its_slot(
    one_speaker_slot: RunningGateway,
    short_wav: bytes,
    path: str,
    content_type: str,
    first_bytes: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gateway = one_speaker_slot
    host, port = gateway.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(_head(gateway, path, content_type, 100_000) + first_bytes)
        await writer.drain()
        if path == "/api/speakers/identify":
            await asyncio.sleep(0.3)  # its handler is reading: the one speaker slot is taken
            assert await _identify(gateway, short_wav) == 429

        async def trickle() -> None:
            while True:
                await asyncio.sleep(0.2)
                writer.write(b" ")  # 5 bytes/s, far under the rule's 500
                await writer.drain()

        trickling = asyncio.create_task(trickle())
        try:
            status, headers, body = await asyncio.wait_for(_read_answer(reader), timeout=10)
        finally:
            trickling.cancel()
        assert status == b"HTTP/1.1 408 Request Timeout"
        assert body["error"]["code"] == "body_too_slow"
        assert f"at least {MIN_BYTES_PER_S} bytes/s" in body["error"]["message"]
        assert headers[b"Connection"] == b"close"
        assert await asyncio.wait_for(reader.read(), timeout=15) == b""  # closed by the gateway
    finally:
        writer.close()
    assert await _identify(gateway, short_wav) == 200
    # The unread rest of the body is dropped with the connection, not logged as an error.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_slow_but_steady_upload_is_not_cut(
    one_speaker_slot: RunningGateway, short_wav: bytes
) -> None:
    """An upload arriving at twice the rule's minimum rate for several times the grace period
    is answered as usual."""
    gateway = one_speaker_slot
    form = (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode()
        + short_wav
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    step = 2 * MIN_BYTES_PER_S // 10  # every 0.1 s
    host, port = gateway.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        content_type = f"multipart/form-data; boundary={BOUNDARY}"
        writer.write(_head(gateway, "/api/speakers/identify", content_type, len(form)))
        sent = 0
        loop = asyncio.get_running_loop()
        started = loop.time()
        while sent < len(form):
            piece = form[sent : sent + step]
            writer.write(piece)
            await writer.drain()
            sent += len(piece)
            if loop.time() - started > 4 * GRACE_S:
                writer.write(form[sent:])  # long enough to have been cut under a fixed deadline
                sent = len(form)
                break
            await asyncio.sleep(0.1)
        status, _, body = await asyncio.wait_for(_read_answer(reader), timeout=30)
        assert status == b"HTTP/1.1 200 OK", body
        assert set(body) == {"speaker", "confidence"}
    finally:
        writer.close()


async def test_a_connection_that_never_finishes_its_head_is_closed(
    one_speaker_slot: RunningGateway,
) -> None:
    """Half a head, then a header line now and then: closed after the deadline, while a client
    that sent its requests keeps its connection between them past that deadline."""
    gateway = one_speaker_slot
    host, port = gateway.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\n")
        loop = asyncio.get_running_loop()
        started = loop.time()
        closed = asyncio.ensure_future(reader.read())
        while not closed.done() and loop.time() - started < 10:
            writer.write(b"X-Slow: 1\r\n")
            await asyncio.sleep(0.3)
        assert await asyncio.wait_for(closed, timeout=10) == b""  # closed, nothing answered
        assert loop.time() - started < 4 * GRACE_S
    finally:
        writer.close()
    # One connection, two requests, longer apart than the deadline: kept alive as usual.
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        for _ in range(2):
            writer.write(b"GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n")
            status, _, body = await asyncio.wait_for(_read_answer(reader), timeout=10)
            assert status == b"HTTP/1.1 200 OK", body
            await asyncio.sleep(2 * GRACE_S)
    finally:
        writer.close()
