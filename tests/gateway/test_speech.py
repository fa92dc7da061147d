"""Text to speech through the gateway: every format decoded back, Open WebUI's shape, streaming."""

from __future__ import annotations

import base64
import json

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI

from spark_gateway.appkeys import NOTIFIER
from spark_gateway.audio_codec import decode_to_wav16k
from spark_gateway.config import Timeouts
from tests.gateway.audio_files import duration_of, word_overlap
from tests.gateway.conftest import FakeHomeAssistant, GatewayFactory, RunningGateway
from tests.sim import SimCluster

TEXT = "The quick brown fox jumps over the lazy dog."
ARIA = "Magpie-Multilingual.EN-US.Aria"


async def direct_magpie_duration(sim: SimCluster, text: str, voice: str = ARIA) -> float:
    """What Magpie itself produces for the text (the reference the gateway must preserve)."""
    form = aiohttp.FormData(default_to_multipart=True)
    for name, value in (
        ("text", text),
        ("language", "en-US"),
        ("voice", voice),
        ("sample_rate_hz", "22050"),
        ("encoding", "LINEAR_PCM"),
    ):
        form.add_field(name, value)
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{sim.magpie.url}/v1/audio/synthesize", data=form) as resp,
    ):
        assert resp.status == 200
        return duration_of(await resp.read())


CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}


@pytest.mark.parametrize("fmt", sorted(CONTENT_TYPES))
async def test_every_format_decodes_to_the_right_duration(
    client: AsyncOpenAI, sim: SimCluster, fmt: str
) -> None:
    reference = await direct_magpie_duration(sim, TEXT)
    response = await client.audio.speech.create(
        model="tts-1",
        voice=ARIA,
        input=TEXT,
        response_format=fmt,  # type: ignore[arg-type]
    )
    content_type = response.response.headers["Content-Type"]
    assert content_type.startswith(CONTENT_TYPES[fmt])
    if fmt == "pcm":
        assert content_type == "audio/pcm;rate=22050;channels=1"
        duration = len(response.content) / 2 / 22050
    else:
        duration = duration_of(response.content)
    assert duration == pytest.approx(reference, abs=0.1)


async def test_open_webui_shape_gets_mp3_and_is_intelligible(
    gateway: RunningGateway, client: AsyncOpenAI
) -> None:
    """Open WebUI sends {input, voice, model} and no response_format: it relies on mp3."""
    async with (
        aiohttp.ClientSession(headers=gateway.headers()) as session,
        session.post(
            f"{gateway.url}/v1/audio/speech",
            json={"input": TEXT, "voice": "alloy", "model": "tts-1"},
        ) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "audio/mpeg"
        mp3 = await resp.read()
    assert mp3[:3] == b"ID3" or mp3[0] == 0xFF  # an MPEG audio stream
    # Real speech came back: the gateway's own STT recognises it.
    heard = await client.audio.transcriptions.create(model="whisper-1", file=("s.mp3", mp3))
    assert word_overlap(TEXT, heard.text) >= 0.6


async def test_voice_aliases_and_languages(client: AsyncOpenAI, sim: SimCluster) -> None:
    voices = (await client.get("/audio/voices", cast_to=object))["voices"]  # type: ignore[index]
    ids = {v["id"] for v in voices}
    assert ARIA in ids
    assert "alloy" in ids
    models = (await client.get("/audio/models", cast_to=object))["models"]  # type: ignore[index]
    assert {"id": "tts-1"} in models
    # A Spanish voice gets Spanish language sent to Magpie (accepted, real audio back).
    spanish = await client.audio.speech.create(
        model="tts-1",
        voice="Magpie-Multilingual.ES-US.Diego",
        input="Hola amigo.",
        response_format="wav",
    )
    assert duration_of(spanish.content) > 0.3
    # Case-insensitive alias → the configured Magpie voice, same audio as asking for it.
    alias = await client.audio.speech.create(
        model="tts-1", voice="Alloy", input=TEXT, response_format="wav"
    )
    assert duration_of(alias.content) == pytest.approx(
        await direct_magpie_duration(sim, TEXT), abs=0.05
    )


@pytest.mark.parametrize("speed", [0.5, 2.0])
async def test_speed_is_applied(client: AsyncOpenAI, sim: SimCluster, speed: float) -> None:
    reference = await direct_magpie_duration(sim, TEXT)
    response = await client.audio.speech.create(
        model="tts-1", voice=ARIA, input=TEXT, response_format="flac", speed=speed
    )
    assert duration_of(response.content) == pytest.approx(reference / speed, rel=0.05)


async def test_long_text_is_split_under_magpie_limit(client: AsyncOpenAI, sim: SimCluster) -> None:
    sentence = "Seven green apples are on the kitchen table today. "
    text = sentence * 40  # 2,040 characters: over Magpie's 2,000 per request
    response = await client.audio.speech.create(
        model="tts-1", voice=ARIA, input=text, response_format="wav"
    )
    one = await direct_magpie_duration(sim, sentence.strip())
    assert duration_of(response.content) == pytest.approx(40 * one, rel=0.1)


async def test_streamed_audio_arrives_sentence_by_sentence(
    client: AsyncOpenAI, sim: SimCluster
) -> None:
    sentences = ["First sentence here.", "Second sentence there.", "Third and last one."]
    text = " ".join(sentences)
    async with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice=ARIA, input=text, response_format="mp3", stream_format="audio"
    ) as response:
        assert response.headers["Content-Type"] == "audio/mpeg"
        chunks = [chunk async for chunk in response.iter_bytes()]
    assert len(chunks) >= 3
    # One Magpie request per sentence, joined into one continuous MP3 stream.
    expected = sum([await direct_magpie_duration(sim, s) for s in sentences])
    assert duration_of(b"".join(chunks)) == pytest.approx(expected, abs=0.15)


async def test_sse_stream(gateway: RunningGateway) -> None:
    body = {
        "input": "One sentence. Two sentences.",
        "voice": ARIA,
        "response_format": "pcm",
        "stream_format": "sse",
    }
    async with (
        aiohttp.ClientSession(headers=gateway.headers()) as session,
        session.post(f"{gateway.url}/v1/audio/speech", json=body) as resp,
    ):
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        events = [
            json.loads(line[6:])
            for line in (await resp.text()).splitlines()
            if line.startswith("data: ")
        ]
    assert events[-1]["type"] == "speech.audio.done"
    audio = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert all(e["type"] == "speech.audio.delta" for e in events[:-1])
    assert len(audio) / 2 / 22050 > 1.0


async def test_robust_to_magpie_wav_quirks(client: AsyncOpenAI, sim: SimCluster) -> None:
    reference = await direct_magpie_duration(sim, TEXT)
    sim.magpie.quirks.float32 = True
    sim.magpie.quirks.list_chunk_after_data = True
    response = await client.audio.speech.create(
        model="tts-1", voice=ARIA, input=TEXT, response_format="wav"
    )
    assert duration_of(response.content) == pytest.approx(reference, abs=0.1)
    decoded = decode_to_wav16k(response.content)
    assert 300 < abs(decoded.samples.astype(float)).mean() < 20000  # not noise from a misread


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "", "voice": ARIA}, "input"),
        ({"input": "x" * 4097, "voice": ARIA}, "input"),
        ({"input": "hi", "voice": "no-such-voice"}, "voice"),
        ({"input": "hi", "voice": ARIA, "response_format": "ogg"}, "response_format"),
        ({"input": "hi", "voice": ARIA, "speed": 5}, "speed"),
        ({"input": "hi", "voice": ARIA, "speed": "fast"}, "speed"),
        ({"input": "hi", "voice": ARIA, "stream_format": "chunks"}, "stream_format"),
        ({"input": "   ", "voice": ARIA}, "input"),
        ({"voice": ARIA}, "input"),
        ({"input": "hi", "voice": {"id": 7}}, "voice"),
    ],
)
async def test_bad_requests_name_the_field(
    gateway: RunningGateway, body: dict[str, object], param: str
) -> None:
    status, answer = await gateway.post("/v1/audio/speech", json=body)
    assert status == 400
    assert answer["error"]["param"] == param


async def test_magpie_down_is_503(client: AsyncOpenAI, sim: SimCluster) -> None:
    await sim.faults.refuse("magpie")
    with pytest.raises(openai.APIStatusError) as info:
        await client.audio.speech.create(model="tts-1", voice=ARIA, input=TEXT)
    assert info.value.status_code == 503


async def test_failing_magpie_is_502_without_wedge_report(
    client: AsyncOpenAI, sim: SimCluster, fake_ha: FakeHomeAssistant, gateway: RunningGateway
) -> None:
    sim.faults.wedge("magpie")
    with pytest.raises(openai.APIStatusError) as info:
        await client.audio.speech.create(model="tts-1", voice=ARIA, input=TEXT)
    assert info.value.status_code == 502
    assert info.value.body["code"] == "upstream_error"  # type: ignore[index]
    await gateway.app[NOTIFIER].drain()
    assert fake_ha.events == []  # only Parakeet 500s mean a wedged CUDA context


async def test_hanging_magpie_is_504(sim: SimCluster, start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway(
        magpie_url=sim.magpie.url, timeouts=Timeouts(speech=0.5, health=0.5)
    )
    sim.faults.hang("magpie")
    status, body = await gateway.post("/v1/audio/speech", json={"input": "Hi.", "voice": "alloy"})
    assert status == 504
    assert body["error"]["code"] == "upstream_timeout"
