"""Small helpers the voice tests use to talk Wyoming and judge recognized speech."""

from __future__ import annotations

import asyncio
import re

import av
import numpy as np
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.tts import Synthesize, SynthesizeVoice

READ_TIMEOUT = 30.0


def word_overlap(expected: str, heard: str) -> float:
    """Share of the expected words that were heard (order-free, case-free)."""
    want = re.findall(r"[a-z']+", expected.lower())
    got = set(re.findall(r"[a-z']+", heard.lower()))
    return sum(word in got for word in want) / len(want)


async def read_until(client: AsyncTcpClient, *stop_types: str) -> list[Event]:
    """Read events until one of `stop_types` (included) arrives."""
    events: list[Event] = []
    while True:
        event = await asyncio.wait_for(client.read_event(), READ_TIMEOUT)
        assert event is not None, f"connection closed before {stop_types}: {events}"
        events.append(event)
        if event.type in stop_types:
            return events


def audio_of(events: list[Event]) -> tuple[int, int, int, bytes]:
    """(rate, width, channels, pcm) of all audio chunks, which must share one format."""
    chunks = [AudioChunk.from_event(e) for e in events if AudioChunk.is_type(e.type)]
    assert chunks, "no audio"
    formats = {(c.rate, c.width, c.channels) for c in chunks}
    assert len(formats) == 1, f"mixed audio formats {formats}"
    rate, width, channels = formats.pop()
    return rate, width, channels, b"".join(c.audio for c in chunks)


async def synthesize(port: int, text: str, voice: str | None = None) -> list[Event]:
    """Plain (non-streaming) synthesis through a TTS bridge; returns the events."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(
            Synthesize(text=text, voice=SynthesizeVoice(name=voice) if voice else None).event()
        )
        return await read_until(client, AudioStop().event().type)


async def transcribe(
    port: int,
    pcm: bytes,
    rate: int,
    width: int = 2,
    channels: int = 1,
    *,
    language: str | None = "en",
    chunk_bytes: int = 3200,
) -> list[Event]:
    """Send audio to an STT bridge the way HA does; returns every event up to transcript-stop."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Transcribe(language=language).event())
        await client.write_event(AudioStart(rate=rate, width=width, channels=channels).event())
        for start in range(0, len(pcm), chunk_bytes):
            piece = pcm[start : start + chunk_bytes]
            await client.write_event(AudioChunk(rate, width, channels, piece).event())
        await client.write_event(AudioStop().event())
        return await read_until(client, "transcript-stop", "error")


def resample_with_pyav(pcm: bytes, rate: int, out_rate: int, out_layout: str) -> bytes:
    """Convert mono s16 PCM to another rate/layout with PyAV (independent of the bridge)."""
    frame = av.AudioFrame.from_ndarray(
        np.frombuffer(pcm, dtype="<i2").reshape(1, -1), format="s16", layout="mono"
    )
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="s16", layout=out_layout, rate=out_rate)
    out = [f.to_ndarray().tobytes() for f in resampler.resample(frame)]
    out += [f.to_ndarray().tobytes() for f in resampler.resample(None)]
    return b"".join(out)
