"""Hostile Wyoming clients get an `error` event, never a traceback, a stall or a memory bill.

Each case below was seen on the demo (issue #11): a header declaring a 4 GiB payload, audio at
1 Hz or 2**40 Hz, and dozens of connections that never finish an utterance.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import pytest
from wyoming.audio import AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe

from custom_components.spark_control.sparklib.voice.server import MAX_PAYLOAD_BYTES
from tests.integration.voice.conftest import RunningBridges
from tests.integration.voice.wyoming_io import read_until


async def exchange(port: int, raw: bytes) -> tuple[dict[str, Any], bool]:
    """Send raw bytes; the first event back (header merged with data) and whether the bridge
    closed the connection after it: a Describe sent next is answered with `info` only on an
    open one (so neither answer is inferred from a silence)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 30)
        assert line, "closed without an event"
        event = json.loads(line)
        if event.get("data_length"):
            event["data"] = json.loads(await reader.readexactly(event["data_length"]))
        try:
            writer.write(header("describe"))
            await writer.drain()
            reply = await asyncio.wait_for(reader.readline(), 30)
        except ConnectionError:  # closed with our bytes unread: the kernel sends a reset
            reply = b""
        if reply:
            assert json.loads(reply)["type"] == "info", reply
        return event, not reply
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def header(event_type: str, data: dict[str, Any] | None = None, **extra: Any) -> bytes:
    return json.dumps({"type": event_type, "data": data or {}, **extra}).encode() + b"\n"


def chunk(rate: int, width: int, channels: int, payload: bytes) -> bytes:
    data = {"rate": rate, "width": width, "channels": channels}
    return header("audio-chunk", data, payload_length=len(payload)) + payload


async def test_payload_length_is_capped_before_reading(running: RunningBridges) -> None:
    for port in (running.stt_port, running.tts_port):
        raw = header("audio-chunk", {"rate": 16000, "width": 2, "channels": 1},
                     payload_length=2**32) + b"\0" * 65536  # fmt: skip
        event, closed = await exchange(port, raw)
        assert event["type"] == "error"
        assert event["data"]["code"] == "too-large"
        assert f"over the {MAX_PAYLOAD_BYTES}-byte limit" in event["data"]["text"]
        assert closed


async def test_data_length_and_header_size_are_capped(running: RunningBridges) -> None:
    event, closed = await exchange(running.stt_port, header("describe", data_length=2**31))
    assert event["data"]["code"] == "too-large"
    assert closed
    event, closed = await exchange(running.stt_port, b'{"type": "' + b"d" * 100_000 + b'"}\n')
    assert event["data"]["code"] == "too-large"
    assert closed
    nested = b'{"type": "describe", "data": ' + b"[" * 30_000 + b"\n"
    event, closed = await exchange(running.stt_port, nested)
    assert event["data"]["code"] == "malformed"
    assert closed
    event, closed = await exchange(running.stt_port, header("describe", payload_length=-5))
    assert event["data"]["code"] == "malformed"
    assert closed


@pytest.mark.parametrize(
    ("rate", "width", "channels"),
    [
        (2**40, 2, 1),
        (1, 2, 1),
        (0, 2, 1),
        (16000, 0, 1),
        (16000, 2, 0),
        (16000, 9, 1),
        (16000, 2, 64),
        (-16000, 2, 1),
        (True, 2, 1),
        ("16000", 2, 1),
    ],
)
async def test_impossible_audio_formats_get_an_error_event(
    running: RunningBridges, caplog: pytest.LogCaptureFixture, rate: Any, width: Any, channels: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    raw = header("transcribe") + header("audio-start", {"rate": 16000, "width": 2, "channels": 1})
    event, closed = await exchange(
        running.stt_port, raw + chunk(rate, width, channels, b"\0" * 32000)
    )
    assert event["type"] == "error", event
    assert event["data"]["code"] == "malformed"
    assert not closed  # a bad event, not broken framing: the client may go on
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert running.sim.parakeet.transcriptions == 0


async def test_impossible_audio_start_gets_an_error_event(running: RunningBridges) -> None:
    start = AudioStart(rate=2**40, width=2, channels=1).event()
    raw = header(start.type, start.data)
    event, _ = await exchange(running.stt_port, raw)
    assert event["data"]["code"] == "malformed"
    assert "unsupported audio format" in event["data"]["text"]


async def test_length_is_checked_before_converting(running: RunningBridges) -> None:
    """Audio past the cap is refused from its declared size; none of it is resampled or sent."""
    running.bridges.stt_bridge.max_audio_seconds = 1.0
    second_at_8k = b"\0\1" * 8000
    raw = header("transcribe") + header("audio-start", {"rate": 8000, "width": 2, "channels": 1})
    raw += chunk(8000, 2, 1, second_at_8k) + chunk(8000, 2, 1, second_at_8k)
    raw += header(AudioStop().event().type)
    event, closed = await exchange(running.stt_port, raw)
    assert event["data"]["code"] == "audio-too-long"
    assert closed
    assert running.sim.parakeet.transcriptions == 0


async def test_connections_are_capped(running: RunningBridges) -> None:
    running.bridges.stt_bridge.max_connections = 3
    server = running.bridges.stt
    held = [AsyncTcpClient("127.0.0.1", running.stt_port) for _ in range(3)]
    try:
        for client in held:
            await client.connect()
            await client.write_event(Describe().event())
            await read_until(client, "info")  # answered: the bridge counts this connection
        assert server.open_connections == 3
        serving = server.connection_tasks
        event, closed = await exchange(running.stt_port, header("describe"))
        assert event["data"]["code"] == "busy", event
        assert "too many connections (limit 3)" in event["data"]["text"]
        assert closed
    finally:
        for client in held:
            await client.disconnect()
    # Each connection's task ends once the bridge has seen it close.
    done, _ = await asyncio.wait(serving, timeout=30)
    assert len(done) == 3
    assert server.open_connections == 0
    async with AsyncTcpClient("127.0.0.1", running.stt_port) as client:
        await client.write_event(Describe().event())
        assert (await read_until(client, "info"))[-1].type == "info"
