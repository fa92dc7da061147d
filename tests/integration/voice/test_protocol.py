"""Protocol edges: both wyoming versions' events, unknown and malformed ones, upstream faults."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from wyoming.asr import Transcript
from wyoming.audio import AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeVoice,
)

from custom_components.spark_control.sparklib.voice import VoiceBridgeConfig, VoiceBridges
from tests.integration.voice.conftest import RunningBridges
from tests.integration.voice.test_bridges import SENTENCE
from tests.integration.voice.wyoming_io import (
    audio_of,
    read_until,
    synthesize,
    transcribe,
    word_overlap,
)
from tests.sim import SimCluster


async def _describe(port: int) -> Info:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Describe().event())
        return Info.from_event((await read_until(client, "info"))[-1])


async def _speech(running: RunningBridges) -> tuple[int, bytes]:
    rate, _width, _channels, pcm = audio_of(await synthesize(running.tts_port, SENTENCE))
    return rate, pcm


async def test_unknown_events_are_ignored_without_disconnecting(running: RunningBridges) -> None:
    for port in (running.stt_port, running.tts_port):
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Event(type="run-satellite", data={"x": 1}))
            await client.write_event(Event(type="made-up-event", payload=b"\0\1"))
            await client.write_event(Describe().event())
            assert (await read_until(client, "info"))[-1].type == "info"


async def test_wyoming_1_10_stt_events_are_tolerated(running: RunningBridges) -> None:
    rate, pcm = await _speech(running)
    async with AsyncTcpClient("127.0.0.1", running.stt_port) as client:
        await client.write_event(Event(type="select-program", data={"name": "spark-parakeet"}))
        await client.write_event(
            Event(
                type="transcribe",
                data={
                    "language": "en",
                    "vad_sensitivity": "aggressive",
                    "transcript_names": ["kitchen"],
                    "transcript_terms": ["light"],
                    "context": {"conversation": "abc"},
                },
            )
        )
        await client.write_event(AudioStart(rate=rate, width=2, channels=1, timestamp=0).event())
        await client.write_event(
            Event(
                type="audio-chunk",
                data={"rate": rate, "width": 2, "channels": 1, "timestamp": 0},
                payload=pcm,
            )
        )
        await client.write_event(AudioStop(timestamp=1000).event())
        events = await read_until(client, "transcript-stop")
    text = Transcript.from_event(events[-2]).text
    assert word_overlap(SENTENCE, text) >= 0.6, text


async def test_wyoming_1_10_tts_events_are_tolerated(running: RunningBridges) -> None:
    async with AsyncTcpClient("127.0.0.1", running.tts_port) as client:
        await client.write_event(Event(type="select-program", data={"name": "spark-magpie"}))
        await client.write_event(
            Event(type="synthesize", data={"text": SENTENCE, "text_format": "text"})
        )
        plain = await read_until(client, "audio-stop")
        assert audio_of(plain)[3]
        await client.write_event(
            Event(
                type="synthesize-start",
                data={
                    "voice": {"name": "Magpie-Multilingual.EN-US.Mia"},
                    "text_format": "text",
                    "context": {"id": 1},
                },
            )
        )
        await client.write_event(SynthesizeChunk(text=SENTENCE).event())
        await client.write_event(
            Event(type="synthesize", data={"text": SENTENCE, "text_format": "text"})
        )
        await client.write_event(SynthesizeStop().event())
        streamed = await read_until(client, "synthesize-stopped")
    assert [e.type for e in streamed if e.type != "audio-chunk"] == [
        "audio-start",
        "audio-stop",
        "synthesize-stopped",
    ]


async def test_malformed_events_get_an_error_and_keep_the_connection(
    running: RunningBridges,
) -> None:
    async with AsyncTcpClient("127.0.0.1", running.stt_port) as client:
        await client.write_event(Event(type="audio-chunk", data={"rate": 16000}, payload=b"\0\0"))
        error = Error.from_event((await read_until(client, "error"))[-1])
        assert error.code == "malformed"
        assert "audio-chunk" in error.text
        await client.write_event(
            Event(type="audio-chunk", data={"rate": 16000, "width": 2, "channels": 6}, payload=b"")
        )
        assert (await read_until(client, "error"))[-1].data["code"] == "malformed"
        await client.write_event(Describe().event())
        assert (await read_until(client, "info"))[-1].type == "info"
    async with AsyncTcpClient("127.0.0.1", running.tts_port) as client:
        await client.write_event(Event(type="synthesize", data={"voice": {}}))
        assert (await read_until(client, "error"))[-1].data["code"] == "malformed"
        await client.write_event(SynthesizeChunk(text="No stream was started.").event())
        assert (await read_until(client, "error"))[-1].data["code"] == "malformed"
        await client.write_event(Event(type="synthesize", data={"text": "Hi.", "voice": "x"}))
        assert (await read_until(client, "error"))[-1].data["code"] == "malformed"
        await client.write_event(Describe().event())
        assert (await read_until(client, "info"))[-1].type == "info"


async def test_parakeet_500_sends_error_and_a_wedge_report(running: RunningBridges) -> None:
    rate, pcm = await _speech(running)
    running.sim.faults.wedge("parakeet")
    events = await transcribe(running.stt_port, pcm, rate)
    error = Error.from_event(events[-1]) if events[-1].type == "error" else None
    assert error is not None, events
    assert error.code == "upstream-fault"
    assert len(running.wedge_reports) == 1
    assert "CUBLAS_STATUS_EXECUTION_FAILED" in running.wedge_reports[0]
    running.sim.faults.clear()
    events = await transcribe(running.stt_port, pcm, rate)
    assert word_overlap(SENTENCE, Transcript.from_event(events[-2]).text) >= 0.6


async def test_parakeet_unreachable_is_an_error_but_no_wedge(running: RunningBridges) -> None:
    rate, pcm = await _speech(running)
    await running.sim.faults.refuse("parakeet")
    events = await transcribe(running.stt_port, pcm, rate)
    assert events[-1].type == "error"
    error = Error.from_event(events[-1])
    assert error.code == "upstream-error"
    # In words, as HA's wyoming integration logs it; not aiohttp's repr of its connection key.
    assert error.text.startswith("parakeet: unreachable: Cannot connect to host 127.0.0.1:"), error
    assert "ConnectionKey" not in error.text
    assert running.wedge_reports == []


async def test_magpie_unreachable_ends_plain_and_streamed_synthesis_with_error(
    running: RunningBridges,
) -> None:
    await running.sim.faults.refuse("magpie")
    async with AsyncTcpClient("127.0.0.1", running.tts_port) as client:
        await client.write_event(Synthesize(text=SENTENCE).event())
        events = await read_until(client, "error")
        assert events[-1].data["text"].startswith("magpie: unreachable: Cannot connect to host")
        assert "ConnectionKey" not in events[-1].data["text"]
        assert await client.read_event() is None  # closed: the reply cannot go on
    async with AsyncTcpClient("127.0.0.1", running.tts_port) as client:
        await client.write_event(SynthesizeStart().event())
        await client.write_event(SynthesizeChunk(text=f"{SENTENCE} {SENTENCE}").event())
        await client.write_event(SynthesizeStop().event())
        events = await read_until(client, "error")
        assert all(e.type not in {"audio-chunk", "synthesize-stopped"} for e in events)
        assert await client.read_event() is None


async def test_stopping_closes_open_connections(running: RunningBridges) -> None:
    async with AsyncTcpClient("127.0.0.1", running.stt_port) as client:
        await client.write_event(Describe().event())
        await read_until(client, "info")
        await running.bridges.async_stop()
        assert await client.read_event() is None


async def test_audio_over_the_upload_cap_is_refused(running: RunningBridges) -> None:
    running.bridges.stt_bridge.max_audio_seconds = 1.0
    rate, pcm = await _speech(running)
    assert len(pcm) / 2 / rate > 1.0
    events = await transcribe(running.stt_port, pcm, rate)
    error = Error.from_event(events[-1])
    assert error.code == "audio-too-long"
    assert running.sim.parakeet.transcriptions == 0
    # A shorter utterance on the same bridge still works.
    short = pcm[: int(0.9 * rate) * 2]
    events = await transcribe(running.stt_port, short, rate)
    assert events[-1].type == "transcript-stop"


async def test_broken_framing_gets_an_error_then_the_connection_closes(
    running: RunningBridges,
) -> None:
    for port in (running.stt_port, running.tts_port):
        # Not JSON at all, or JSON but not an event header: an error first, then the end.
        for line in (b"this is not a wyoming event\n", b'{"data": {"text": "no type"}}\n'):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(line)
            await writer.drain()
            header = json.loads(await asyncio.wait_for(reader.readline(), 30))
            assert header["type"] == "error"
            data = json.loads(await reader.readexactly(header["data_length"]))
            assert data["code"] == "malformed"
            assert await asyncio.wait_for(reader.read(), 30) == b""
            writer.close()
            await writer.wait_closed()
    # The bridges keep serving everyone else.
    async with AsyncTcpClient("127.0.0.1", running.stt_port) as client:
        await client.write_event(Describe().event())
        assert (await read_until(client, "info"))[-1].type == "info"


async def test_idle_connections_are_closed(running: RunningBridges) -> None:
    running.bridges.stt_bridge.idle_timeout = 0.3
    running.bridges.tts_bridge.idle_timeout = 0.3
    for port in (running.stt_port, running.tts_port):
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Describe().event())
            await read_until(client, "info")
            assert await asyncio.wait_for(client.read_event(), 30) is None


async def test_text_over_the_reply_cap_is_refused(running: RunningBridges) -> None:
    running.bridges.tts_bridge.max_text_chars = 100
    async with AsyncTcpClient("127.0.0.1", running.tts_port) as client:
        await client.write_event(Synthesize(text="word " * 30).event())
        assert (await read_until(client, "error"))[-1].data["code"] == "text-too-long"
        await client.write_event(SynthesizeStart().event())
        await client.write_event(SynthesizeChunk(text="Hello there. " * 5).event())
        await client.write_event(SynthesizeChunk(text="Hello there. " * 5).event())
        events = await read_until(client, "error")
        assert events[-1].data["code"] == "text-too-long"
        assert await client.read_event() is None
    assert running.sim.magpie.syntheses <= 5


async def test_hanging_magpie_delays_neither_start_nor_describe(sim: SimCluster) -> None:
    sim.faults.hang("magpie")
    config = VoiceBridgeConfig(
        sim.parakeet.url,
        sim.magpie.url,
        0,
        0,
        host="127.0.0.1",
        voice_list_wait=0.3,
        request_timeout=120,
    )
    async with aiohttp.ClientSession() as session:
        bridges = VoiceBridges(session, config)
        try:
            # The hung Magpie holds its request for the client's 120 s: start and a Describe
            # done within 30 s did not wait for it (HA gives a Describe 1 s; voice_list_wait
            # keeps start to 0.3 s, a latency for a benchmark, not a test on a loaded machine).
            async with asyncio.timeout(30):
                await bridges.start()
                info = await _describe(bridges.tts.port)
            assert info.tts[0].voices == []  # without voices rather than late
            await sim.faults.clear()
            # The hung read of the voices now ends (or, if it already failed, this Describe
            # starts another): once that refresh is done, Describe lists the voices.
            await _describe(bridges.tts.port)
            async with asyncio.timeout(30):
                await bridges.voices.refreshed()
            info = await _describe(bridges.tts.port)
            assert "Magpie-Multilingual.EN-US.Mia" in {v.name for v in info.tts[0].voices}
        finally:
            await bridges.async_stop()


async def test_streaming_with_an_unknown_voice_is_refused(running: RunningBridges) -> None:
    async with AsyncTcpClient("127.0.0.1", running.tts_port) as client:
        await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name="Nobody")).event())
        events = await read_until(client, "error")
        assert events[-1].data["code"] == "unknown-voice"
        assert await client.read_event() is None


async def test_client_leaving_mid_reply_stops_its_synthesis(
    running: RunningBridges, caplog: pytest.LogCaptureFixture
) -> None:
    client = AsyncTcpClient("127.0.0.1", running.tts_port)
    await client.connect()
    await client.write_event(SynthesizeStart().event())
    await client.write_event(SynthesizeChunk(text=f"{SENTENCE} " * 6 + "And more. ").event())
    await read_until(client, "audio-start")  # mid-reply: the first sentence is being spoken
    (serving,) = running.bridges.tts.connection_tasks
    await client.disconnect()
    # The connection ends on the bridge's side too, with its synthesis tasks.
    await asyncio.wait_for(serving, 30)
    assert running.bridges.tts.open_connections == 0
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "magpie synthesis"]
    assert "Unexpected error" not in caplog.text
    # Others are still served.
    assert (await _describe(running.tts_port)).tts
