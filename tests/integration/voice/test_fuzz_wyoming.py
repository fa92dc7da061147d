"""Hostile Wyoming event streams against both bridges: `error` events, no tracebacks, no bloat.

Each stream is built from a fixed seed: valid events with wrong field types and values,
impossible audio formats, payload and data lengths that lie, garbage lines, cut-off bodies.
After every stream the bridge must still answer `describe`; no error may be logged with a
traceback; the process's memory may grow by at most 64 MiB over the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from typing import Any

import psutil
import pytest

from tests.integration.voice.conftest import RunningBridges

SEED = 1313
STREAMS = 60
CEILING_MIB = 64
EVENT_TYPES = [
    "describe", "transcribe", "audio-start", "audio-chunk", "audio-stop", "synthesize",
    "synthesize-start", "synthesize-chunk", "synthesize-stop", "ping", "run-pipeline", "x" * 300,
]  # fmt: skip


def wild_value(rng: random.Random) -> Any:
    return rng.choice([
        None, True, -1, 0, 1, 2**40, 2**63, 1e308, "", "x" * 5000, "\x00", "\ud800", [], {},
        [1, 2], {"name": 5}, 16000, 2, 1,
    ])  # fmt: skip


def random_data(rng: random.Random) -> dict[str, Any]:
    fields = ["rate", "width", "channels", "text", "language", "voice", "name", "timestamp"]
    data = {rng.choice(fields): wild_value(rng) for _ in range(rng.randrange(5))}
    if rng.random() < 0.5:
        data.update(rate=rng.choice([16000, 22050, 1, 2**40]), width=rng.choice([2, 0, 9]),
                    channels=rng.choice([1, 2, 0, 300]))  # fmt: skip
    return data


def encode(header: dict[str, Any]) -> bytes:
    return json.dumps(header, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n"


def random_stream(rng: random.Random) -> bytes:
    out = bytearray()
    for _ in range(rng.randrange(1, 12)):
        kind = rng.randrange(10)
        if kind == 0:
            out += rng.choice([b"not json\n", b"[]\n", b"{}\n", b"\xff\xfe\n", b"{" * 5000 + b"\n",
                               b'{"type": 5}\n', b"\n"])  # fmt: skip
            continue
        header: dict[str, Any] = {"type": rng.choice(EVENT_TYPES), "data": random_data(rng)}
        payload = b""
        if kind in (1, 2, 3):
            payload = rng.randbytes(rng.choice([1, 3, 320, 32000, 200_000]))
            header["payload_length"] = len(payload)
        if kind == 4:  # a lying length: more than is sent
            header["payload_length"] = rng.choice([2**32, 2**20 + 1, 10**12])
        if kind == 5:
            header["payload_length"] = rng.choice([-1, "12", 1.5, True])
        if kind == 6:
            extra = json.dumps(random_data(rng)).encode()
            header["data_length"] = rng.choice([len(extra), len(extra) + 7, 2**31])
            out += encode(header) + extra
            continue
        out += encode(header) + payload
    if rng.random() < 0.3:
        del out[rng.randrange(len(out)) :]  # cut off mid-event
    return bytes(out)


async def play(port: int, stream: bytes) -> list[dict[str, Any]]:
    """Send a stream, half-close, read every event back until the bridge closes (it does once
    it has read our end; the deadline allows for a Parakeet call on a loaded machine)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    events: list[dict[str, Any]] = []
    try:
        with contextlib.suppress(ConnectionError):
            writer.write(stream)
            await writer.drain()
            writer.write_eof()
        while True:
            try:
                line = await asyncio.wait_for(reader.readline(), 30)
            except ConnectionError:
                break
            if not line:
                break
            header = json.loads(line)
            for key in ("data_length", "payload_length"):
                if header.get(key):
                    await reader.readexactly(header[key])
            events.append(header)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return events


async def describe_works(port: int) -> bool:
    events = await play(port, encode({"type": "describe"}))
    return any(event["type"] == "info" for event in events)


async def test_hostile_event_streams(
    running: RunningBridges, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rng = random.Random(SEED)
    me = psutil.Process()
    before = me.memory_info().rss
    peak = before
    errors = 0
    for index in range(STREAMS):
        port = running.stt_port if index % 2 == 0 else running.tts_port
        events = await play(port, random_stream(rng))
        errors += sum(event["type"] == "error" for event in events)
        peak = max(peak, me.memory_info().rss)
        assert await describe_works(port), f"stream {index} left the bridge unable to answer"
    tracebacks = [r for r in caplog.records if r.exc_info and r.levelno >= logging.WARNING]
    assert not tracebacks, [r.getMessage() for r in tracebacks]
    assert errors > STREAMS // 2, errors  # hostile input is answered, not silently dropped
    assert (peak - before) / 2**20 <= CEILING_MIB
    serving = running.bridges.stt.connection_tasks + running.bridges.tts.connection_tasks
    if serving:  # closed on our side already; the bridge's tasks end a moment later
        await asyncio.wait(serving, timeout=30)
    assert running.bridges.stt.open_connections == 0
    assert running.bridges.tts.open_connections == 0
