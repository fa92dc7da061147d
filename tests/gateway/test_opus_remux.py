"""Opus reaches Parakeet copied into Ogg, not decoded; hostile Opus files are refused first."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np
import pytest
import soundfile
from openai import AsyncOpenAI

from spark_gateway.appkeys import AUDIO_IN_FLIGHT, SPOOL
from spark_gateway.parakeet_formats import is_remuxed
from tests.gateway.audio_files import encode_with_pyav, word_overlap
from tests.gateway.conftest import SPOKEN, GatewayFactory, RunningGateway
from tests.gateway.hostile_audio import hostile_opus
from tests.gateway.test_stt_passthrough import (
    DecoderCalls,
    RecordingParakeet,
    recording_parakeet,
    transcribe,
)
from tests.sim import SimCluster

TONE = (np.sin(np.arange(3 * 16000) / 16000 * 2 * np.pi * 220) * 8000).astype(np.int16)


@pytest.fixture
async def recorder() -> AsyncIterator[RecordingParakeet]:
    async with recording_parakeet() as parakeet:
        yield parakeet


async def post_upload(gateway: RunningGateway, upload: bytes, **fields: str) -> tuple[int, Any]:
    form = aiohttp.FormData({"model": "whisper-1", **fields})
    form.add_field("file", upload, filename="recording.webm")
    return await gateway.post("/v1/audio/transcriptions", data=form)


def opus_samples(ogg: bytes) -> tuple[np.ndarray, int]:
    """The Ogg/Opus decoded by libsndfile, as the Parakeet container reads it."""
    with soundfile.SoundFile(io.BytesIO(ogg)) as sound:
        assert (sound.format, sound.subtype) == ("OGG", "OPUS")
        return sound.read(dtype="float32"), int(sound.samplerate)


def decoded_by_ffmpeg(data: bytes) -> np.ndarray:
    """The upload decoded by FFmpeg's own Opus decoder (48 kHz float), as a reference."""
    with av.open(io.BytesIO(data)) as container:
        frames = container.decode(container.streams.audio[0])
        return np.concatenate([frame.to_ndarray().reshape(-1) for frame in frames])


def best_match(a: np.ndarray, b: np.ndarray, max_lag: int = 400) -> float:
    """The highest correlation of `a` with `b` shifted by up to `max_lag` samples."""
    n = min(len(a), len(b)) - max_lag
    return max(
        float(
            np.corrcoef(a[max(lag, 0) : n + max(lag, 0)], b[max(-lag, 0) : n + max(-lag, 0)])[0, 1]
        )
        for lag in range(-max_lag, max_lag + 1)
    )


@pytest.mark.parametrize("container", ["webm", "ogg"])
async def test_opus_is_sent_as_ogg_opus_without_decoding(
    start_gateway: GatewayFactory, recorder: RecordingParakeet, container: str
) -> None:
    gateway = await start_gateway(parakeet_url=recorder.url)
    calls = DecoderCalls(gateway)
    upload = encode_with_pyav(TONE, 16000, container, "libopus")
    assert await transcribe(gateway, upload, response_format="verbose_json") == "heard"
    assert calls.count == 1  # the remux still runs in a decoder process (issue #11)
    [sent] = recorder.received
    assert recorder.named == [("audio.ogg", "audio/ogg")]
    samples, rate = opus_samples(sent)
    assert rate == 48000
    assert len(samples) / rate == pytest.approx(3.0, abs=0.03)
    # The very packets of the upload: the same audio as decoding the upload itself, give or
    # take Opus's pre-skip (312 samples), which FFmpeg drops in Ogg but not in WebM.
    assert best_match(samples, decoded_by_ffmpeg(upload)) > 0.999


CHROMIUM_WEBM = Path(__file__).parent / "data" / "chromium_speech.webm"


async def test_a_real_browser_recording_is_heard_through_the_remux(
    client: AsyncOpenAI, sim: SimCluster
) -> None:
    """Chromium's own MediaRecorder (`data/record_in_chromium.py`: flite's voice into its fake
    microphone, audio/webm;codecs=opus, no declared length, 60 ms packets) remuxed by the
    gateway and decoded by the simulator's Parakeet as the container decodes it."""
    recording = CHROMIUM_WEBM.read_bytes()
    result = await client.audio.transcriptions.create(
        model="whisper-1", file=("recording.webm", recording), response_format="verbose_json"
    )
    assert word_overlap(SPOKEN, result.text) >= 0.6, result.text
    assert result.duration == pytest.approx(3.18, abs=0.05)
    assert sim.parakeet.transcriptions == 1


async def test_remuxed_audio_holds_its_length_of_the_budget(
    start_gateway: GatewayFactory, recorder: RecordingParakeet
) -> None:
    """The remux reserves the per-request maximum, then keeps the length its packets span
    until the request ends, as a decode keeps the length it made."""
    gateway = await start_gateway(parakeet_url=recorder.url)
    in_flight = gateway.app[AUDIO_IN_FLIGHT]
    recorder.watch = lambda: in_flight.capacity_s - in_flight.free_s
    assert await transcribe(gateway, encode_with_pyav(TONE, 16000, "webm", "libopus")) == "heard"
    assert recorder.watched == [pytest.approx(3.0, abs=0.03)]  # held while Parakeet had it
    await gateway.app[SPOOL].drain()
    assert in_flight.free_s == in_flight.capacity_s


async def test_a_spooled_opus_upload_is_remuxed_to_a_spool_file(
    start_gateway: GatewayFactory, recorder: RecordingParakeet
) -> None:
    """Past 256 KiB the upload is on disk, and so is its Ogg, streamed to Parakeet."""
    gateway = await start_gateway(parakeet_url=recorder.url)
    noise = np.random.default_rng(0).integers(-8000, 8000, 40 * 16000).astype(np.int16)
    upload = encode_with_pyav(noise, 16000, "webm", "libopus")
    assert len(upload) > 256 * 1024
    assert await transcribe(gateway, upload) == "heard"
    [sent] = recorder.received
    samples, rate = opus_samples(sent)
    assert len(samples) / rate == pytest.approx(40.0, abs=0.05)
    await gateway.app[SPOOL].drain()
    assert list(gateway.app[SPOOL].directory.iterdir()) == []


async def test_what_needs_samples_or_is_not_opus_is_decoded(
    start_gateway: GatewayFactory, recorder: RecordingParakeet
) -> None:
    """Streamed transcripts are cut here, so they need samples; Matroska holding FLAC is not
    remuxed."""
    gateway = await start_gateway(parakeet_url=recorder.url)
    webm = encode_with_pyav(TONE, 16000, "webm", "libopus")
    assert await transcribe(gateway, webm) == "heard"
    status, _ = await post_upload(gateway, webm, stream="true")
    assert status == 200
    flac = encode_with_pyav(TONE, 16000, "matroska", "flac")
    assert flac[:4] == b"\x1a\x45\xdf\xa3"  # EBML, as a webm
    assert await transcribe(gateway, flac) == "heard"
    kinds = [
        (sent[:4], filename)
        for sent, (filename, _) in zip(recorder.received, recorder.named, strict=True)
    ]
    assert kinds[0] == (b"OggS", "audio.ogg")
    assert kinds[-1] == (b"RIFF", "audio.wav")
    assert all(kind == (b"RIFF", "audio.wav") for kind in kinds[1:])


def test_only_mono_and_stereo_opus_is_remuxed() -> None:
    head = encode_with_pyav(TONE, 16000, "ogg", "libopus")
    opus_head = head[head.index(b"OpusHead") :][:19]
    assert is_remuxed("opus", 1, opus_head)
    assert is_remuxed("opus", 2, opus_head[:9] + b"\x02" + opus_head[10:])
    family_1 = opus_head[:18] + b"\x01" + bytes([1, 0, 0])  # legal, rare: decoded here
    assert not is_remuxed("opus", 1, family_1)
    assert not is_remuxed("opus", 6, opus_head)
    assert not is_remuxed("opus", 1, None)
    assert not is_remuxed("vorbis", 1, opus_head)


# The words of the 400 each hostile variant gets.
REFUSALS = {
    "cut inside the header": "could not be decoded",
    "damaged OpusHead": "identification header (OpusHead) is damaged",
    "unknown codec id": "codec",
    "timestamps past the cap": "longer than the 60 s allowed",
    "20 streams": "holds 20 streams",
    "Ogg cut before its audio": "could not be decoded",
}
HOSTILE_OPUS = hostile_opus(encode_with_pyav(TONE, 16000, "webm", "libopus"))


def test_every_hostile_variant_has_its_refusal() -> None:
    assert sorted(HOSTILE_OPUS) == sorted(REFUSALS)


@pytest.mark.parametrize("name", sorted(HOSTILE_OPUS))
async def test_hostile_opus_is_refused_before_parakeet(
    start_gateway: GatewayFactory, recorder: RecordingParakeet, name: str
) -> None:
    gateway: RunningGateway = await start_gateway(parakeet_url=recorder.url, max_audio_seconds=60.0)
    upload, words = HOSTILE_OPUS[name], REFUSALS[name]
    status, body = await post_upload(gateway, upload)
    assert status == 400, body
    assert body["error"]["code"] == "invalid_audio"
    assert words in body["error"]["message"]
    assert recorder.received == []
