"""What the STT bridge uploads: the WAV it builds while the audio streams in, checked byte for
byte by a real loopback HTTP server that parses the multipart request the way Parakeet's does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial

import aiohttp
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient

from custom_components.spark_control.sparklib.voice.parakeet import ParakeetClient
from custom_components.spark_control.sparklib.voice.server import WyomingBridgeServer
from custom_components.spark_control.sparklib.voice.stt_handler import SttBridge, SttEventHandler
from custom_components.spark_control.sparklib.voice.wav import (
    GrowingWav,
    PcmAudio,
    parse_wav,
    pcm_to_wav,
)

from .wyoming_io import read_until


@dataclass
class Upload:
    """One transcription request as the server parsed it."""

    fields: dict[str, str]
    wav: bytes
    content_type: str


@dataclass
class CapturingParakeet:
    """A Parakeet stand-in that keeps every upload and answers with a numbered text."""

    url: str = ""
    uploads: list[Upload] = field(default_factory=list)

    async def transcriptions(self, request: web.Request) -> web.Response:
        form = await request.post()
        file = form["file"]
        assert isinstance(file, web.FileField)
        fields = {name: str(value) for name, value in form.items() if name != "file"}
        self.uploads.append(Upload(fields, file.file.read(), file.content_type))
        return web.json_response({"text": f" upload {len(self.uploads)} "})


@pytest.fixture
async def parakeet() -> AsyncIterator[CapturingParakeet]:
    capture = CapturingParakeet()
    app = web.Application()
    app.router.add_post("/v1/audio/transcriptions", capture.transcriptions)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    capture.url = str(server.make_url("")).rstrip("/")
    try:
        yield capture
    finally:
        await server.close()


@pytest.fixture
async def stt_port(parakeet: CapturingParakeet) -> AsyncIterator[int]:
    async with aiohttp.ClientSession() as session:
        bridge = SttBridge(ParakeetClient(session, parakeet.url))
        server = WyomingBridgeServer("127.0.0.1", 0, partial(SttEventHandler, bridge))
        await server.start()
        try:
            yield server.port
        finally:
            await server.stop()


def _noise(frames: int, channels: int = 1, seed: int = 1) -> bytes:
    samples = np.random.default_rng(seed).integers(-20000, 20000, frames * channels)
    return samples.astype("<i2").tobytes()


async def _utterance(
    client: AsyncTcpClient, pcm: bytes, rate: int, channels: int, chunk_bytes: int
) -> str:
    await client.write_event(AudioStart(rate=rate, width=2, channels=channels).event())
    for start in range(0, len(pcm), chunk_bytes):
        piece = pcm[start : start + chunk_bytes]
        await client.write_event(AudioChunk(rate, 2, channels, piece).event())
    await client.write_event(AudioStop().event())
    return Transcript.from_event((await read_until(client, "transcript"))[-1]).text


async def test_16k_mono_cut_mid_frame_is_uploaded_unchanged(
    parakeet: CapturingParakeet, stt_port: int
) -> None:
    first, second = _noise(8000, seed=1), _noise(5001, seed=2)
    async with AsyncTcpClient("127.0.0.1", stt_port) as client:
        await client.write_event(Transcribe(language="de-DE").event())
        # Odd chunk sizes cut frames in two; a second utterance on the same connection
        # must not see the first one's audio.
        assert await _utterance(client, first, 16000, 1, 1233) == "upload 1"
        await read_until(client, "transcript-stop")
        assert await _utterance(client, second, 16000, 1, 641) == "upload 2"
    assert [parse_wav(upload.wav) for upload in parakeet.uploads] == [
        PcmAudio(16000, 2, 1, first),
        PcmAudio(16000, 2, 1, second),
    ]
    # The header is the one the wave module writes for that audio, sizes included.
    assert parakeet.uploads[1].wav == pcm_to_wav(PcmAudio(16000, 2, 1, second))
    for upload in parakeet.uploads:
        assert upload.content_type == "audio/wav"
        assert upload.fields == {
            "model": "parakeet-tdt-0.6b-v3",
            "response_format": "json",
            "language": "de",
        }


async def test_other_formats_are_converted_and_language_can_change(
    parakeet: CapturingParakeet, stt_port: int
) -> None:
    stereo_48k = _noise(4800, channels=2)
    async with AsyncTcpClient("127.0.0.1", stt_port) as client:
        await client.write_event(Transcribe(language="fr").event())
        await _utterance(client, stereo_48k, 48000, 2, 1000)
        await read_until(client, "transcript-stop")
        await client.write_event(Transcribe().event())
        await _utterance(client, _noise(1600), 16000, 1, 3200)
    converted = parse_wav(parakeet.uploads[0].wav)
    assert (converted.rate, converted.width, converted.channels) == (16000, 2, 1)
    assert abs(converted.frames - 1600) <= 2  # 0.1 s at 16 kHz, give or take the resampler
    assert parakeet.uploads[0].fields["language"] == "fr"
    assert "language" not in parakeet.uploads[1].fields  # no language: Parakeet detects it


def test_growing_wav_matches_the_wave_module_between_preamble_and_trailer() -> None:
    pcm = _noise(999)
    growing = GrowingWav(16000, 2, 1, preamble=b"--head--")
    growing.append(pcm[:301])
    growing.append(pcm[301:] + b"\x01")  # a trailing half frame is left out
    assert growing.pcm_size == len(pcm) + 1
    body = growing.finish(b"--tail--")
    assert bytes(body) == b"--head--" + pcm_to_wav(PcmAudio(16000, 2, 1, pcm)) + b"--tail--"
