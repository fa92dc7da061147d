"""Malformed audio against the real gateway process: a 400 or a 200, never a crash or a bloat.

The gateway runs as the add-on runs it (`python -m spark_gateway`), so a decoder crash that
escaped isolation would end the process and fail the test. Inputs come from fixed seeds: WAV
headers with random fields, and real recordings (mp3, flac, ogg/opus, webm, wav) with bytes
flipped, cut, duplicated or spliced. Memory (PSS of the gateway and its decoders) must stay
within 150 MiB of idle over the whole run.
"""

from __future__ import annotations

import random
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from spark_gateway.audio_codec import wav_to_pcm
from tests.gateway.audio_files import encode_with_pyav
from tests.gateway.gateway_process import GatewayProcess, PeakSampler, SinkParakeet
from tests.gateway.hostile_audio import wav_file

SEED = 1111
HEADER_CASES = 48
MUTATION_CASES = 60
CEILING_MIB = 150
KEY = "sk-fuzz-0123456789"
CONTAINERS = {
    "mp3": ("mp3", "libmp3lame"),
    "flac": ("flac", "flac"),
    "ogg": ("ogg", "libopus"),
    "webm": ("webm", "libopus"),
    "wav": ("wav", "pcm_s16le"),
}


def random_header(rng: random.Random) -> bytes:
    tag = rng.choice([0, 1, 2, 3, 6, 7, 0x11, 0x55, 0xFFFE, 0xFFFF, rng.randrange(65536)])
    channels = rng.choice([0, 1, 2, 6, 17, 255, 65535])
    rate = rng.choice([0, 1, 3999, 8000, 16000, 44100, 384001, 2**31, 2**32 - 1])
    bits = rng.choice([0, 4, 8, 16, 24, 32, 33, 64, 65535])
    align = rng.choice([None, 0, 1, 7, 65535])
    data = rng.randbytes(rng.choice([0, 1, 3, 320, 32000]))
    size = rng.choice([None, 0, 0xFFFFFFFF, 10**9])
    extra = rng.choice([b"", b"\x00\x00", rng.randbytes(24), rng.randbytes(2) + b"\x16\x00"])
    return wav_file(tag=tag, channels=channels, rate=rate, bits=bits, block_align=align,
                    data=data, data_size=size, extra_fmt=extra)  # fmt: skip


def mutate(rng: random.Random, original: bytes) -> bytes:
    data = bytearray(original)
    for _ in range(rng.randrange(1, 4)):
        action = rng.randrange(6)
        at = rng.randrange(len(data)) if data else 0
        if action == 0:  # flip bytes, mostly near the headers
            for _ in range(rng.randrange(1, 16)):
                spot = min(rng.randrange(256), len(data) - 1) if rng.random() < 0.7 else at
                data[spot] = rng.randrange(256)
        elif action == 1:  # cut short
            del data[at:]
        elif action == 2:  # duplicate a run
            data[at:at] = data[at : at + rng.randrange(1, 4096)]
        elif action == 3:  # large fields: sizes of 0xFFFFFFFF
            data[at:at] = struct.pack("<I", 0xFFFFFFFF)
        elif action == 4:  # random bytes inserted
            data[at:at] = rng.randbytes(rng.randrange(1, 512))
        else:  # another container's head spliced in front
            data[0:0] = rng.choice([b"RIFF", b"fLaC", b"OggS", b"\x1aE\xdf\xa3", b"ID3\x04"])
    return bytes(data)


@pytest.fixture
async def gateway_process(tmp_path: Path) -> AsyncIterator[tuple[GatewayProcess, SinkParakeet]]:
    async with (
        SinkParakeet() as sink,
        GatewayProcess(tmp_path, KEY, parakeet_url=sink.url) as gateway,
    ):
        yield gateway, sink


async def post(
    session: aiohttp.ClientSession, gateway: GatewayProcess, audio: bytes
) -> tuple[int, dict[str, object]]:
    form = aiohttp.FormData()
    form.add_field("file", audio, filename="fuzz.bin", content_type="application/octet-stream")
    async with session.post(
        gateway.url + "/v1/audio/transcriptions", data=form, headers=gateway.headers,
        timeout=aiohttp.ClientTimeout(total=120),
    ) as resp:  # fmt: skip
        assert resp.content_type == "application/json", await resp.text()
        return resp.status, await resp.json()


async def test_malformed_audio_never_crashes_or_bloats_the_gateway(
    gateway_process: tuple[GatewayProcess, SinkParakeet], short_wav: bytes
) -> None:
    gateway, _ = gateway_process
    rng = random.Random(SEED)
    samples, rate = wav_to_pcm(short_wav)
    originals = [
        encode_with_pyav(samples, rate, container, codec)
        for container, codec in CONTAINERS.values()
    ]
    cases = [random_header(rng) for _ in range(HEADER_CASES)]
    cases += [mutate(rng, rng.choice(originals)) for _ in range(MUTATION_CASES)]
    answers: dict[int, int] = {}
    async with aiohttp.ClientSession() as session:
        assert (await post(session, gateway, short_wav))[0] == 200  # warm: fork server up
        idle = gateway.memory_mib()
        async with PeakSampler(gateway) as sampler:
            for index, audio in enumerate(cases):
                status, body = await post(session, gateway, audio)
                assert gateway.alive, f"case {index} ended the gateway"
                assert status in (200, 400), (index, status, body)
                if status == 400:
                    error = body["error"]
                    assert isinstance(error, dict)
                    assert error["code"] in ("invalid_audio", "empty_audio"), (index, error)
                    assert error["message"], index
                    assert "/tmp" not in str(error["message"]), error  # no scratch paths
                answers[status] = answers.get(status, 0) + 1
        # Still transcribing after the whole run.
        assert (await post(session, gateway, short_wav))[0] == 200
    assert sampler.peak - idle <= CEILING_MIB, (sampler.peak, idle)
    assert answers.get(400, 0) > len(cases) // 3, answers  # most inputs really are broken
