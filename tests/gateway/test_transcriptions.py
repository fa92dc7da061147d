"""Speech to text through the gateway: real speech, real formats, the official SDK, Open WebUI."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI

from spark_gateway.appkeys import NOTIFIER
from spark_gateway.audio_codec import wav_to_pcm
from spark_gateway.config import Timeouts
from tests.gateway.audio_files import encode_with_pyav, word_overlap
from tests.gateway.conftest import (
    SHORT_SPOKEN,
    SPOKEN,
    FakeHomeAssistant,
    GatewayFactory,
    RunningGateway,
)
from tests.sim import SimCluster

FORMATS = {
    "webm": ("webm", "libopus"),  # what a browser's MediaRecorder uploads
    "mp3": ("mp3", "libmp3lame"),
    "wav": ("wav", "pcm_s16le"),
}


def upload(speech_wav: bytes, kind: str) -> bytes:
    samples, rate = wav_to_pcm(speech_wav)
    container, codec = FORMATS[kind]
    return encode_with_pyav(samples, rate, container, codec)


@pytest.mark.parametrize("kind", sorted(FORMATS))
async def test_real_speech_in_each_format(
    client: AsyncOpenAI, speech_wav: bytes, kind: str
) -> None:
    result = await client.audio.transcriptions.create(
        model="whisper-1", file=(f"recording.{kind}", upload(speech_wav, kind))
    )
    assert word_overlap(SPOKEN, result.text) >= 0.6, result.text


async def test_open_webui_request_shape(gateway: RunningGateway, speech_wav: bytes) -> None:
    """Open WebUI: model + language + file named <uuid>.wav; no response_format; reads ["text"].

    The file is webm/opus despite its name (open-webui#14101): the bytes decide.
    """
    form = aiohttp.FormData()
    form.add_field(
        "file", upload(speech_wav, "webm"), filename=f"{uuid.uuid4()}.wav", content_type="audio/wav"
    )
    form.add_field("model", "whisper-1")
    form.add_field("language", "en")
    status, body = await gateway.post("/v1/audio/transcriptions", data=form)
    assert status == 200
    assert word_overlap(SPOKEN, body["text"]) >= 0.6
    assert body["usage"] == {"type": "duration", "seconds": 3}


async def test_response_formats(client: AsyncOpenAI, speech_wav: bytes, short_wav: bytes) -> None:
    audio = upload(speech_wav, "mp3")
    verbose = await client.audio.transcriptions.create(
        model="whisper-1",
        file=("a.mp3", audio),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
        language="en",
    )
    assert verbose.language == "en"
    assert verbose.duration == pytest.approx(2.9, abs=0.4)
    assert verbose.words
    assert len(verbose.words) >= 6
    assert all(w.start <= w.end for w in verbose.words)
    assert verbose.segments
    assert verbose.segments[0].start <= verbose.words[0].start
    assert word_overlap(SPOKEN, " ".join(s.text for s in verbose.segments)) >= 0.6

    short = upload(short_wav, "mp3")
    text, srt, vtt = await asyncio.gather(
        *(
            client.audio.transcriptions.create(
                model="whisper-1", file=("a.mp3", short), response_format=fmt
            )  # type: ignore[call-overload]
            for fmt in ("text", "srt", "vtt")
        )
    )
    assert isinstance(text, str)
    assert word_overlap(SHORT_SPOKEN, text) >= 0.6
    assert srt.startswith("1\n00:00:0")
    assert " --> " in srt
    assert vtt.startswith("WEBVTT\n\n00:00:0")


async def test_granularities_plain_spelling(gateway: RunningGateway, short_wav: bytes) -> None:
    """Clients that send `timestamp_granularities` without brackets get words too."""
    form = aiohttp.FormData()
    form.add_field("file", upload(short_wav, "wav"), filename="a.wav")
    form.add_field("response_format", "verbose_json")
    form.add_field("timestamp_granularities", "word")
    _, body = await gateway.post("/v1/audio/transcriptions", data=form)
    assert len(body["words"]) >= 2
    assert body["segments"]


async def test_json_input_audio_mode(gateway: RunningGateway, short_wav: bytes) -> None:
    """Open WebUI's optional JSON request format: base64 audio in input_audio."""
    import base64

    payload = {
        "model": "whisper-1",
        "input_audio": {
            "data": base64.b64encode(upload(short_wav, "mp3")).decode(),
            "format": "mp3",
        },
    }
    async with aiohttp.ClientSession(headers=gateway.headers()) as session:
        async with session.post(f"{gateway.url}/v1/audio/transcriptions", json=payload) as resp:
            assert resp.status == 200
            assert word_overlap(SHORT_SPOKEN, (await resp.json())["text"]) >= 0.6
        async with session.post(
            f"{gateway.url}/v1/audio/transcriptions", json={"input_audio": {"data": "%%%"}}
        ) as resp:
            assert resp.status == 400


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"file": b""}, 400, "empty_audio"),
        ({"file": b"definitely not audio " * 20}, 400, "invalid_audio"),
        ({"model": "whisper-1"}, 400, "missing_file"),
        ({"file": b"RIFF", "response_format": "xml"}, 400, "unsupported_response_format"),
        ({"file": b"RIFF", "language": "not a language!"}, 400, "invalid_language"),
        ({"file": b"RIFF", "timestamp_granularities[]": "letter"}, 400, "invalid_granularity"),
        ({"file": b"RIFF", "temperature": "7"}, 400, "invalid_temperature"),
    ],
)
async def test_bad_requests(
    gateway: RunningGateway, fields: dict[str, object], status: int, code: str
) -> None:
    form = aiohttp.FormData()
    for name, value in fields.items():
        if isinstance(value, bytes):
            form.add_field(name, value, filename="x.webm")
        else:
            form.add_field(name, str(value))
    got_status, body = await gateway.post("/v1/audio/transcriptions", data=form)
    assert got_status == status
    assert body["error"]["code"] == code


async def test_wrong_content_type_is_415(gateway: RunningGateway) -> None:
    async with (
        aiohttp.ClientSession(headers=gateway.headers()) as session,
        session.post(
            f"{gateway.url}/v1/audio/transcriptions",
            data=b"abc",
            headers={"Content-Type": "text/plain"},
        ) as resp,
    ):
        assert resp.status == 415
        assert (await resp.json())["error"]["type"] == "invalid_request_error"


async def test_wedged_parakeet_is_503_and_reported(
    client: AsyncOpenAI,
    gateway: RunningGateway,
    sim: SimCluster,
    fake_ha: FakeHomeAssistant,
    speech_wav: bytes,
) -> None:
    sim.faults.wedge("parakeet")
    with pytest.raises(openai.APIStatusError) as info:
        await client.audio.transcriptions.create(
            model="whisper-1", file=("a.wav", upload(speech_wav, "wav"))
        )
    assert info.value.status_code == 503
    assert info.value.response.headers["Retry-After"] == "60"
    assert info.value.body["code"] == "upstream_wedged"  # type: ignore[index]
    await gateway.app[NOTIFIER].drain()
    assert len(fake_ha.events) == 1
    event_type, data = fake_ha.events[0]
    assert event_type == "spark_control_wedge_report"
    assert data["service"] == "parakeet"
    assert data["source"] == "gateway"
    assert "CUBLAS_STATUS_EXECUTION_FAILED" in data["error"]
    assert data["upstream"] == sim.parakeet.url  # names the cluster the wedge belongs to


async def test_hanging_parakeet_is_a_reported_wedge(
    sim: SimCluster,
    start_gateway: GatewayFactory,
    fake_ha: FakeHomeAssistant,
    speech_wav: bytes,
) -> None:
    """A hung CUDA call looks like a timeout: the same 503 and wedge report as a 500."""
    gateway = await start_gateway(
        parakeet_url=sim.parakeet.url,
        ha_url=fake_ha.url,
        ha_token=fake_ha.token,
        timeouts=Timeouts(transcription=0.5, connect=0.5),
    )
    sim.faults.hang("parakeet")
    form = aiohttp.FormData()
    form.add_field("file", upload(speech_wav, "wav"), filename="a.wav")
    status, body = await gateway.post("/v1/audio/transcriptions", data=form)
    assert status == 503
    assert body["error"]["code"] == "upstream_wedged"
    await gateway.app[NOTIFIER].drain()
    assert [event for event, _ in fake_ha.events] == ["spark_control_wedge_report"]


async def test_refused_parakeet_is_503(
    client: AsyncOpenAI, sim: SimCluster, speech_wav: bytes
) -> None:
    await sim.faults.refuse("parakeet")
    with pytest.raises(openai.APIStatusError) as info:
        await client.audio.transcriptions.create(
            model="whisper-1", file=("a.wav", upload(speech_wav, "wav"))
        )
    assert info.value.status_code == 503
    assert info.value.body["code"] == "upstream_unavailable"  # type: ignore[index]


async def test_a_burst_of_wedge_failures_is_one_report(
    gateway: RunningGateway, sim: SimCluster, fake_ha: FakeHomeAssistant, short_wav: bytes
) -> None:
    sim.faults.wedge("parakeet")
    for _ in range(3):
        form = aiohttp.FormData()
        form.add_field("file", upload(short_wav, "wav"), filename="a.wav")
        status, _ = await gateway.post("/v1/audio/transcriptions", data=form)
        assert status == 503
    await gateway.app[NOTIFIER].drain()
    assert [event for event, _ in fake_ha.events] == ["spark_control_wedge_report"]
    # Recovered (the integration restarts the container): transcription works again.
    sim.faults.clear()
    form = aiohttp.FormData()
    form.add_field("file", upload(short_wav, "wav"), filename="a.wav")
    status, body = await gateway.post("/v1/audio/transcriptions", data=form)
    assert status == 200
    assert word_overlap(SHORT_SPOKEN, body["text"]) >= 0.6
