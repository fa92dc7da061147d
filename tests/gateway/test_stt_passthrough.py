"""A WAV already in Parakeet's format reaches it as uploaded; everything else is decoded."""

from __future__ import annotations

import contextlib
import io
import wave
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import openai
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from openai import AsyncOpenAI

from spark_gateway.appkeys import AUDIO_IN_FLIGHT, DECODER, SPOOL
from spark_gateway.audio_codec import wav_to_pcm
from spark_gateway.stt_passthrough import wav16k_as_is
from spark_gateway.uploads import read_checked_header
from spark_gateway.wav_header import PCM, WavHeaderError, is_riff_wave, parse_wav_header
from tests.gateway.audio_files import encode_with_pyav, word_overlap
from tests.gateway.conftest import SHORT_SPOKEN, GatewayFactory, RunningGateway
from tests.sim import SimCluster


@dataclass
class RecordingParakeet:
    """A loopback stand-in for Parakeet that keeps every file it is sent."""

    received: list[bytes] = field(default_factory=list)
    named: list[tuple[str | None, str]] = field(default_factory=list)  # filename, content type
    fields: list[dict[str, Any]] = field(default_factory=list)  # the other parts of each form
    url: str = ""
    watch: Callable[[], float] | None = None  # sampled as each request arrives
    watched: list[float] = field(default_factory=list)

    async def transcribe(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form["file"]
        assert isinstance(upload, web.FileField)
        self.received.append(upload.file.read())
        self.named.append((upload.filename, upload.content_type))
        self.fields.append({name: value for name, value in form.items() if name != "file"})
        if self.watch is not None:
            self.watched.append(self.watch())
        return web.json_response({"text": "heard"})


@pytest.fixture
async def recorder() -> AsyncIterator[RecordingParakeet]:
    async with recording_parakeet() as parakeet:
        yield parakeet


@contextlib.asynccontextmanager
async def recording_parakeet() -> AsyncIterator[RecordingParakeet]:
    """A RecordingParakeet on a loopback port, stopped on leaving."""
    parakeet = RecordingParakeet()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/audio/transcriptions", parakeet.transcribe)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    parakeet.url = str(server.make_url("")).rstrip("/")
    try:
        yield parakeet
    finally:
        await server.close()


def wav(samples: np.ndarray, rate: int, *, channels: int = 1) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.astype("<i2").tobytes())
    return buffer.getvalue()


def with_list_chunk(data: bytes) -> bytes:
    """The same WAV with a LIST/INFO chunk before `data` (as many recorders write)."""
    info = b"LIST" + (12).to_bytes(4, "little") + b"INFOISFT" + (0).to_bytes(4, "little")
    body = data[12:36] + info + data[36:]
    return b"RIFF" + (4 + len(body)).to_bytes(4, "little") + b"WAVE" + body


class DecoderCalls:
    """Counts the gateway's decoder jobs, decodes and remuxes alike (the real decoder still
    does the work)."""

    def __init__(self, gateway: RunningGateway) -> None:
        self.count = 0
        decoder = gateway.app[DECODER]
        real = decoder._job

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await real(*args, **kwargs)

        decoder._job = counted  # type: ignore[method-assign]


async def transcribe(gateway: RunningGateway, audio: bytes, **extra: Any) -> str:
    async with AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=gateway.api_key, max_retries=0
    ) as client:
        result = await client.audio.transcriptions.create(
            model="whisper-1", file=("speech.wav", audio), **extra
        )
    return result.text


SECOND = (np.sin(np.arange(16000) / 16000 * 2 * np.pi * 220) * 8000).astype(np.int16)


async def test_parakeet_format_is_sent_as_uploaded(
    start_gateway: GatewayFactory, recorder: RecordingParakeet
) -> None:
    gateway = await start_gateway(parakeet_url=recorder.url)
    calls = DecoderCalls(gateway)
    upload = wav(SECOND, 16000)
    assert await transcribe(gateway, upload) == "heard"
    assert recorder.received == [upload]
    # json is the API's default: not sent, one part less for Parakeet to parse.
    assert recorder.fields == [{"model": "nvidia/parakeet-tdt-0.6b-v3"}]
    assert calls.count == 0


@pytest.mark.parametrize(
    "upload",
    [
        wav(np.resize(SECOND, 22050), 22050),  # another rate
        wav(np.repeat(SECOND, 2), 16000, channels=2),  # stereo
        with_list_chunk(wav(SECOND, 16000)),  # extra chunk: not the canonical layout
        wav(SECOND, 16000)[:-100],  # data size declared longer than the file
    ],
    ids=["22k", "stereo", "list-chunk", "truncated"],
)
async def test_anything_else_is_decoded(
    start_gateway: GatewayFactory, recorder: RecordingParakeet, upload: bytes
) -> None:
    gateway = await start_gateway(parakeet_url=recorder.url)
    calls = DecoderCalls(gateway)
    assert await transcribe(gateway, upload) == "heard"
    assert calls.count == 1
    sent = recorder.received[0]
    samples, rate = wav_to_pcm(sent)
    assert (rate, sent[:4], sent[36:40]) == (16000, b"RIFF", b"data")
    assert abs(len(samples) - 16000) < 400


async def test_passthrough_keeps_the_length_cap(
    start_gateway: GatewayFactory, recorder: RecordingParakeet
) -> None:
    gateway = await start_gateway(parakeet_url=recorder.url, max_audio_seconds=0.5)
    with pytest.raises(openai.BadRequestError) as info:
        await transcribe(gateway, wav(SECOND, 16000))
    assert "longer than" in info.value.body["message"]  # type: ignore[index]
    assert recorder.received == []


async def test_real_speech_passes_through(
    start_gateway: GatewayFactory, sim: SimCluster, short_wav: bytes
) -> None:
    """flite writes a canonical 16 kHz WAV: the simulated Parakeet recognises it as sent."""
    gateway = await start_gateway(parakeet_url=sim.parakeet.url)
    calls = DecoderCalls(gateway)
    text = await transcribe(gateway, short_wav)
    assert word_overlap(SHORT_SPOKEN, text) >= 0.6, text
    assert calls.count == 0


async def test_passthrough_counts_against_the_audio_budget(
    start_gateway: GatewayFactory, recorder: RecordingParakeet
) -> None:
    """Audio used as uploaded holds its length of the in-flight budget while it is in use."""
    gateway = await start_gateway(parakeet_url=recorder.url)
    in_flight = gateway.app[AUDIO_IN_FLIGHT]
    recorder.watch = lambda: in_flight.capacity_s - in_flight.free_s
    assert await transcribe(gateway, wav(SECOND, 16000)) == "heard"
    assert recorder.watched == [pytest.approx(1.0)]  # held while Parakeet had it
    await gateway.app[SPOOL].drain()
    assert in_flight.free_s == in_flight.capacity_s  # given back once its file was removed


async def transcribe_mp3_counting_scratch_files(
    start_gateway: GatewayFactory, recorder: RecordingParakeet, seconds: int
) -> RunningGateway:
    """Send `seconds` of mp3 (decoded, unlike Opus); the recorder notes how many files the
    spool held then."""
    gateway = await start_gateway(parakeet_url=recorder.url)
    directory = gateway.app[SPOOL].directory
    recorder.watch = lambda: float(sum(1 for _ in directory.iterdir()))
    mp3 = encode_with_pyav(np.tile(SECOND, seconds), 16000, "mp3", "libmp3lame")
    assert len(mp3) < 256 * 1024  # the upload itself stays in memory
    assert await transcribe(gateway, mp3) == "heard"
    return gateway


async def test_a_short_decode_never_touches_the_disk(
    start_gateway: GatewayFactory, recorder: RecordingParakeet
) -> None:
    """A voice command goes to its decoder and back as bytes: no scratch file at any point."""
    await transcribe_mp3_counting_scratch_files(start_gateway, recorder, 3)
    assert recorder.watched == [0.0]
    samples, rate = wav_to_pcm(recorder.received[0])
    assert rate == 16000
    assert abs(len(samples) - 3 * 16000) < 400


async def test_a_long_decode_is_written_to_the_spool(
    start_gateway: GatewayFactory, recorder: RecordingParakeet
) -> None:
    """Past 8 s the decoder writes its WAV to a scratch file, removed after the answer."""
    gateway = await transcribe_mp3_counting_scratch_files(start_gateway, recorder, 12)
    assert recorder.watched == [1.0]  # the decoded WAV only
    sent = recorder.received[0]
    samples, _ = wav_to_pcm(sent)
    assert abs(len(samples) - 12 * 16000) < 400
    assert int.from_bytes(sent[40:44], "little") == len(sent) - 44  # header patched at the end
    await gateway.app[SPOOL].drain()
    assert recorder.watch is not None
    assert recorder.watch() == 0.0


def test_the_quick_header_reading_agrees_with_the_full_parser() -> None:
    """`wav16k_as_is` reads the canonical header in one unpack; on seeded mutations of a
    16 kHz mono header that the header check accepts, it passes exactly the files the full
    parser (`parse_wav_header`) reads as 16 kHz mono PCM16 with a closed, matching data size."""
    original = wav(SECOND[:100], 16000)
    rng = np.random.default_rng(7)
    compared = passed = 0
    for _ in range(3000):
        upload = bytearray(original)
        for position in rng.integers(0, 44, size=rng.integers(1, 4)):
            upload[position] = int(rng.choice([0, 1, 2, 16, 0xFF, int(rng.integers(256))]))
        data = bytes(upload)
        try:
            head = read_checked_header(data)
        except WavHeaderError:
            continue  # refused before either reading runs
        if not is_riff_wave(head):
            assert wav16k_as_is(data, head, max_duration_s=60) is None
            continue
        header = parse_wav_header(head)
        expected = (
            head[12:16] == b"fmt "
            and head[16:20] == (16).to_bytes(4, "little")
            and head[36:40] == b"data"
            and (header.format_tag, header.channels, header.sample_rate) == (PCM, 1, 16000)
            and (header.bits_per_sample, header.data_bytes) == (16, len(data) - 44)
        )
        as_is = wav16k_as_is(data, head, max_duration_s=60)
        assert (as_is is not None) == expected, data[:44]
        compared += 1
        passed += expected
    assert compared > 400
    assert 100 < passed < compared  # both outcomes were exercised
