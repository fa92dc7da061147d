"""Magpie and Parakeet fakes with real speech: flite speaks, pocketsphinx listens."""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import AsyncIterator

import aiohttp
import numpy as np
import pytest
import soundfile

from tests.sim import SimCluster, SimConfig
from tests.sim.tests.speech_helpers import (
    SENTENCE,
    SHORT_SENTENCE,
    riff_chunks,
    silence_wav,
    synthesize,
    transcribe,
    wav_bytes,
    word_overlap,
)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_magpie_ready_and_voices(sim: SimCluster, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{sim.magpie.url}/v1/health/ready") as response:
        assert response.status == 200
    async with http.get(f"{sim.magpie.url}/v1/audio/list_voices") as response:
        body = await response.json()
    ((locales, entry),) = body.items()
    assert locales == "en-US,es-US,fr-FR,de-DE"
    voices = entry["voices"]
    for name in (
        "Magpie-Multilingual.EN-US.Aria",
        "Magpie-Multilingual.EN-US.Mia",
        "Magpie-Multilingual.EN-US.Jason",
        "Magpie-Multilingual.ES-US.Diego",
    ):
        assert name in voices


async def test_magpie_wav_at_requested_rate_and_voices_differ(
    sim: SimCluster, http: aiohttp.ClientSession
) -> None:
    default = await synthesize(http, sim.magpie.url, "Hello there", rate=22050)
    assert default.status == 200
    assert default.content_type == "audio/wav"
    with wave.open(io.BytesIO(await default.read())) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (22050, 1, 2)
        assert wav.getnframes() > 22050 * 0.3
    aria = await (await synthesize(http, sim.magpie.url, "Hello there", rate=16000)).read()
    jason_response = await synthesize(
        http, sim.magpie.url, "Hello there", rate=16000, voice="Magpie-Multilingual.EN-US.Jason"
    )
    assert aria != await jason_response.read()
    assert sim.magpie.syntheses == 3


async def test_magpie_online_streams_raw_pcm_without_content_type(
    sim: SimCluster, http: aiohttp.ClientSession
) -> None:
    offline = await synthesize(http, sim.magpie.url, "Good morning", rate=22050)
    online = await synthesize(http, sim.magpie.url, "Good morning", rate=22050, online=True)
    assert online.status == 200
    assert "Content-Type" not in online.headers
    pcm = await online.read()
    assert pcm[:4] != b"RIFF"
    with wave.open(io.BytesIO(await offline.read())) as wav:
        assert pcm == wav.readframes(wav.getnframes())


async def test_magpie_rejects_bad_requests(sim: SimCluster, http: aiohttp.ClientSession) -> None:
    too_long = await synthesize(http, sim.magpie.url, "word " * 401)
    assert too_long.status == 400
    assert "2000" in (await too_long.json())["error"]
    unknown_voice = await synthesize(http, sim.magpie.url, "hi", voice="Nope.EN-US.Nobody")
    assert unknown_voice.status == 400
    bad_rate = await synthesize(http, sim.magpie.url, "hi", rate=3)
    assert bad_rate.status == 400
    empty = await synthesize(http, sim.magpie.url, "   ")
    assert empty.status == 400
    form = aiohttp.FormData({"text": "hi", "encoding": "OGGOPUS"})
    async with http.post(f"{sim.magpie.url}/v1/audio/synthesize", data=form) as response:
        assert response.status == 400


async def test_magpie_speaks_ssml_text_not_tags(
    sim: SimCluster, http: aiohttp.ClientSession
) -> None:
    plain = await (await synthesize(http, sim.magpie.url, "Good night", rate=16000)).read()
    ssml = '<speak><prosody rate="90%">Good night</prosody></speak>'
    marked = await (await synthesize(http, sim.magpie.url, ssml, rate=16000)).read()
    assert marked == plain


async def test_upload_cap_answers_413() -> None:
    async with (
        SimCluster(SimConfig(max_upload_bytes=4000)) as small,
        aiohttp.ClientSession() as http,
    ):
        response = await transcribe(http, small.parakeet.url, silence_wav(seconds=1.0))
        assert response.status == 413
        assert "limit" in (await response.json())["detail"]


async def test_magpie_wav_quirks(sim: SimCluster, http: aiohttp.ClientSession) -> None:
    sim.magpie.quirks.float32 = True
    floats = await (await synthesize(http, sim.magpie.url, "Hi", rate=16000)).read()
    assert int.from_bytes(floats[20:22], "little") == 3  # WAVE_FORMAT_IEEE_FLOAT
    samples, rate = soundfile.read(io.BytesIO(floats), dtype="float32")
    assert rate == 16000
    assert 0 < float(np.abs(samples).max()) <= 1.0

    sim.magpie.quirks.float32 = False
    sim.magpie.quirks.list_chunk_after_data = True
    listed = await (await synthesize(http, sim.magpie.url, "Hi", rate=16000)).read()
    names = [name for name, _ in riff_chunks(listed)]
    assert names[-2:] == [b"data", b"LIST"]
    assert int.from_bytes(listed[4:8], "little") == len(listed) - 8


async def test_round_trip_magpie_to_parakeet(sim: SimCluster, http: aiohttp.ClientSession) -> None:
    speech = await synthesize(http, sim.magpie.url, SENTENCE, rate=16000)
    result = await transcribe(
        http, sim.parakeet.url, await speech.read(), response_format="verbose_json"
    )
    assert result.status == 200
    body = await result.json()
    assert word_overlap(SENTENCE, body["text"]) >= 0.6
    assert body["text"][0].isupper()
    assert body["text"].endswith(".")
    starts = [word["start"] for word in body["words"]]
    assert starts == sorted(starts)
    assert all(word["end"] > word["start"] for word in body["words"])
    assert body["words"][-1]["end"] <= body["duration"] + 0.05
    assert body["segments"][0]["text"] == body["text"]
    assert sim.parakeet.transcriptions == 1


async def test_parakeet_hears_ogg_opus_as_the_container_does(
    sim: SimCluster, http: aiohttp.ClientSession
) -> None:
    """Ogg/Opus at 48 kHz (the gateway's remux of a browser's webm/opus) is decoded and
    resampled to 16 kHz, as the container does; Ogg holding anything else is refused."""
    speech = await synthesize(http, sim.magpie.url, SENTENCE, rate=48000)
    samples, rate = soundfile.read(io.BytesIO(await speech.read()), dtype="float32")
    ogg = io.BytesIO()
    soundfile.write(ogg, samples, rate, format="OGG", subtype="OPUS")
    result = await transcribe(
        http, sim.parakeet.url, ogg.getvalue(), response_format="verbose_json"
    )
    assert result.status == 200
    body = await result.json()
    assert word_overlap(SENTENCE, body["text"]) >= 0.6
    assert body["duration"] == pytest.approx(len(samples) / rate, abs=0.01)

    vorbis = io.BytesIO()
    soundfile.write(vorbis, samples, rate, format="OGG", subtype="VORBIS")
    refused = await transcribe(http, sim.parakeet.url, vorbis.getvalue())
    assert refused.status == 400
    assert "must hold Opus" in (await refused.json())["detail"]
    truncated = await transcribe(http, sim.parakeet.url, ogg.getvalue()[:100])
    assert truncated.status == 400


async def test_damaged_audio_gives_a_wrong_transcript(
    sim: SimCluster, http: aiohttp.ClientSession
) -> None:
    # 32 kHz samples labelled as 16 kHz: the recognizer hears them at half speed.
    slow = await synthesize(http, sim.magpie.url, SHORT_SENTENCE, rate=32000)
    with wave.open(io.BytesIO(await slow.read())) as wav:
        pcm = wav.readframes(wav.getnframes())
    mislabelled = await transcribe(http, sim.parakeet.url, wav_bytes(pcm, 16000))
    assert mislabelled.status == 200
    assert word_overlap(SHORT_SENTENCE, (await mislabelled.json())["text"]) < 0.3

    # Float32 samples whose header claims 16-bit PCM: every sample becomes two garbage ones.
    sim.magpie.quirks.float32 = True
    floats = await (await synthesize(http, sim.magpie.url, SHORT_SENTENCE, rate=16000)).read()
    data_offset = floats.index(b"data") + 8
    as_int16 = await transcribe(http, sim.parakeet.url, wav_bytes(floats[data_offset:], 16000))
    assert as_int16.status == 200
    assert word_overlap(SHORT_SENTENCE, (await as_int16.json())["text"]) < 0.3


async def test_parakeet_text_format_health_and_models(
    sim: SimCluster, http: aiohttp.ClientSession
) -> None:
    result = await transcribe(http, sim.parakeet.url, silence_wav(), response_format="text")
    assert result.status == 200
    assert result.content_type == "text/plain"
    assert len((await result.text()).splitlines()) == 1
    async with http.get(f"{sim.parakeet.url}/health") as response:
        assert (await response.json())["status"] == "ok"
    async with http.get(f"{sim.parakeet.url}/v1/models") as response:
        assert (await response.json())["data"][0]["id"] == "nvidia/parakeet-tdt-0.6b-v3"


async def test_parakeet_rejects_bad_uploads(sim: SimCluster, http: aiohttp.ClientSession) -> None:
    mp3ish = await transcribe(http, sim.parakeet.url, b"ID3\x03\x00" + b"\x00" * 64)
    assert mp3ish.status == 400
    assert "WAV" in (await mp3ish.json())["detail"]
    empty = await transcribe(http, sim.parakeet.url, b"")
    assert empty.status == 400
    bad_format = await transcribe(http, sim.parakeet.url, silence_wav(), response_format="srt")
    assert bad_format.status == 400
    form = aiohttp.FormData({"model": "x"})
    form.add_field("other", b"1", filename="x.bin")
    async with http.post(f"{sim.parakeet.url}/v1/audio/transcriptions", data=form) as response:
        assert response.status == 400
        assert "file" in (await response.json())["detail"]
    async with http.post(f"{sim.parakeet.url}/v1/audio/transcriptions", json={"a": 1}) as response:
        assert response.status == 400


async def test_parakeet_fake_gives_the_same_answer_for_the_same_audio(
    sim: SimCluster, http: aiohttp.ClientSession
) -> None:
    """The same upload gets the same words and timings whatever the decoder heard before and
    whichever of the decoder processes takes it (two by default), one after another or at once."""
    sentence = await (await synthesize(http, sim.magpie.url, SENTENCE)).read()
    other = await (
        await synthesize(
            http, sim.magpie.url, SHORT_SENTENCE, voice="Magpie-Multilingual.EN-US.Leo"
        )
    ).read()

    async def heard(audio: bytes) -> tuple[str, list[tuple[str, float, float]]]:
        response = await transcribe(http, sim.parakeet.url, audio, response_format="verbose_json")
        assert response.status == 200
        body = await response.json()
        return body["text"], [(word["word"], word["start"], word["end"]) for word in body["words"]]

    first = await heard(sentence)
    assert word_overlap(SENTENCE, first[0]) >= 0.6, first[0]
    answers = [await heard(sentence), await heard(other), await heard(sentence)]
    answers += await asyncio.gather(*(heard(sentence) for _ in range(4)))
    assert sim.parakeet.recognizer.peak_concurrent == 2  # both decoder processes answered
    for answer in answers[:1] + answers[2:]:
        assert answer == first
