"""The bridges driven by wyoming's own client against the simulator's real speech."""

from __future__ import annotations

import asyncio

import numpy as np
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeVoice,
)

from tests.integration.voice.conftest import RunningBridges
from tests.integration.voice.wyoming_io import (
    audio_of,
    read_until,
    resample_with_pyav,
    synthesize,
    transcribe,
    word_overlap,
)

SENTENCE = "Turn on the kitchen light."
REPLY = (
    "Turn on the kitchen light. The front door is locked. "
    "It is raining outside today. Your meeting starts at noon. Good night to you."
)


async def _describe(port: int) -> Info:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Describe().event())
        events = await read_until(client, "info")
    return Info.from_event(events[-1])


async def test_stt_info_describes_parakeet(running: RunningBridges) -> None:
    info = await _describe(running.stt_port)
    assert not info.tts
    (program,) = info.asr
    assert program.installed
    assert program.version
    assert program.attribution.name
    assert program.supports_transcript_streaming
    (model,) = program.models
    assert model.name == "parakeet-tdt-0.6b-v3"
    assert model.installed
    assert model.version
    assert model.attribution.url.startswith("https://")
    assert {"en", "de", "fr", "es"} <= set(model.languages)


async def test_tts_info_lists_magpie_voices(running: RunningBridges) -> None:
    info = await _describe(running.tts_port)
    assert not info.asr
    (program,) = info.tts
    assert program.installed
    assert program.supports_synthesize_streaming
    voices = {voice.name: voice for voice in program.voices}
    mia = voices["Magpie-Multilingual.EN-US.Mia"]
    assert mia.languages == ["en-US"]
    assert mia.description == "Mia (English, en-US)"
    assert mia.installed
    assert mia.version
    assert mia.attribution.name == "NVIDIA"
    assert voices["Magpie-Multilingual.ES-US.Diego"].languages == ["es-US"]


async def test_plain_synthesis_is_one_audio_stream_in_1024_sample_chunks(
    running: RunningBridges,
) -> None:
    events = await synthesize(running.tts_port, REPLY)
    types = [e.type for e in events]
    assert types[0] == "audio-start"
    assert types[-1] == "audio-stop"
    assert types.count("audio-start") == 1
    assert types.count("audio-stop") == 1
    start = AudioStart.from_event(events[0])
    rate, width, channels, pcm = audio_of(events)
    assert (start.rate, start.width, start.channels) == (rate, width, channels) == (22050, 2, 1)
    chunks = [AudioChunk.from_event(e) for e in events if e.type == "audio-chunk"]
    assert all(c.samples == 1024 for c in chunks[:-1])
    assert 0 < chunks[-1].samples <= 1024
    assert len(pcm) / (rate * width) > 4.0  # five sentences of real speech


async def test_round_trip_tts_then_stt_returns_the_sentence(running: RunningBridges) -> None:
    rate, width, channels, pcm = audio_of(await synthesize(running.tts_port, SENTENCE))
    events = await transcribe(running.stt_port, pcm, rate, width, channels)
    assert [e.type for e in events] == [
        "transcript-start",
        "transcript-chunk",
        "transcript",
        "transcript-stop",
    ]
    transcript = Transcript.from_event(events[2])
    assert word_overlap(SENTENCE, transcript.text) >= 0.6, transcript.text
    assert transcript.language == "en"
    assert events[1].data["text"] == transcript.text


async def test_stt_converts_any_declared_format_to_16k_mono(running: RunningBridges) -> None:
    rate, _width, _channels, pcm = audio_of(await synthesize(running.tts_port, SENTENCE))
    stereo_48k = resample_with_pyav(pcm, rate, 48000, "stereo")
    events = await transcribe(running.stt_port, stereo_48k, 48000, 2, 2, chunk_bytes=1234)
    text = Transcript.from_event(events[2]).text
    assert word_overlap(SENTENCE, text) >= 0.6, text


async def test_stt_without_audio_gives_empty_transcript(running: RunningBridges) -> None:
    events = await transcribe(running.stt_port, b"", 16000)
    assert [e.type for e in events] == ["transcript-start", "transcript", "transcript-stop"]
    assert Transcript.from_event(events[1]).text == ""
    async with AsyncTcpClient("127.0.0.1", running.stt_port) as client:
        # No audio-start at all either.
        await client.write_event(Transcribe().event())
        await client.write_event(AudioStop().event())
        events = await read_until(client, "transcript-stop")
    assert Transcript.from_event(events[-2]).text == ""
    # Nothing to recognize: Parakeet is not asked.
    assert running.sim.parakeet.transcriptions == 0


async def test_streaming_tts_starts_before_the_text_is_complete(running: RunningBridges) -> None:
    async with AsyncTcpClient("127.0.0.1", running.tts_port) as client:
        await client.write_event(SynthesizeStart().event())
        # The first sentence arrives word by word; the second one's start completes it.
        for word in ["Turn", "on", "the", "kitchen", "light.", "The"]:
            await client.write_event(SynthesizeChunk(text=word + " ").event())
        first = await asyncio.wait_for(client.read_event(), 30)
        assert first is not None
        assert first.type == "audio-start"
        for word in REPLY.removeprefix("Turn on the kitchen light. The ").split(" "):
            await client.write_event(SynthesizeChunk(text=word + " ").event())
        # The compatibility copy of the whole text must not be spoken twice.
        await client.write_event(Synthesize(text=REPLY).event())
        await client.write_event(SynthesizeStop().event())
        events = [first, *await read_until(client, "synthesize-stopped")]
    types = [e.type for e in events if e.type != "audio-chunk"]
    assert types == ["audio-start", "audio-stop"] * 5 + ["synthesize-stopped"]
    starts = {
        (s.rate, s.width, s.channels)
        for s in (AudioStart.from_event(e) for e in events if e.type == "audio-start")
    }
    assert starts == {(22050, 2, 1)}
    rate, width, channels, pcm = audio_of(events)
    plain_rate, _w, _c, plain_pcm = audio_of(await synthesize(running.tts_port, REPLY))
    assert rate == plain_rate
    # Same five sentences, same amount of speech (nothing doubled by the compatibility text).
    assert abs(len(pcm) - len(plain_pcm)) < 0.1 * len(plain_pcm)
    heard = Transcript.from_event(
        (await transcribe(running.stt_port, pcm, rate, width, channels))[2]
    ).text
    assert word_overlap(REPLY, heard) >= 0.6, heard


async def test_text_over_magpie_limits_is_split(running: RunningBridges) -> None:
    # One 2,100-character "sentence": Magpie refuses > 2,000 characters per request.
    long_text = ("the light is on, " * 124).strip() + "."
    assert len(long_text) > 2000
    rate, width, _channels, pcm = audio_of(await synthesize(running.tts_port, long_text))
    assert len(pcm) / (rate * width) > 60


async def test_voice_by_name_and_by_language(running: RunningBridges) -> None:
    mia = audio_of(await synthesize(running.tts_port, SENTENCE, "Magpie-Multilingual.EN-US.Mia"))
    assert mia[3]
    async with AsyncTcpClient("127.0.0.1", running.tts_port) as client:
        # A language-only voice, as wyoming clients may send it.
        await client.write_event(
            Event(type="synthesize", data={"text": SENTENCE, "voice": {"language": "es-US"}})
        )
        diego = audio_of(await read_until(client, "audio-stop"))
    assert diego[3]
    assert diego[3] != mia[3]
    async with AsyncTcpClient("127.0.0.1", running.tts_port) as client:
        await client.write_event(
            Synthesize(text=SENTENCE, voice=SynthesizeVoice(name="Nobody")).event()
        )
        events = await read_until(client, "error")
        assert events[-1].data["code"] == "unknown-voice"
        # The connection stays usable.
        await client.write_event(Describe().event())
        assert (await read_until(client, "info"))[-1].type == "info"


async def test_float32_wav_with_trailing_list_chunk_plays_and_is_understood(
    running: RunningBridges,
) -> None:
    clean = audio_of(await synthesize(running.tts_port, SENTENCE))
    running.sim.magpie.quirks.float32 = True
    running.sim.magpie.quirks.list_chunk_after_data = True
    rate, width, channels, pcm = audio_of(await synthesize(running.tts_port, SENTENCE))
    assert (rate, width, channels) == clean[:3] == (22050, 2, 1)
    # Same number of samples: the LIST chunk was not appended as audio (no click at the end).
    assert len(pcm) == len(clean[3])
    difference = np.abs(np.frombuffer(pcm, "<i2").astype(np.int32) - np.frombuffer(clean[3], "<i2"))
    assert int(difference.max()) <= 2
    heard = Transcript.from_event((await transcribe(running.stt_port, pcm, rate))[2]).text
    assert word_overlap(SENTENCE, heard) >= 0.6, heard
