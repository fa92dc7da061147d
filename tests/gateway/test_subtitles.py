"""Subtitles follow words and pauses, in front of our own speech container's real server.

parakeet_server answers verbose_json with one segment for the whole clip plus word timings; the
cues must still break at the pauses between words and stay short enough to read.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import numpy as np
import pytest
from aiohttp.test_utils import TestServer
from openai import AsyncOpenAI

from parakeet_server.config import ServerConfig
from parakeet_server.models import Loaders, ModelRegistry
from parakeet_server.server import create_app
from spark_gateway.transcript_formats import CUE_MAX_CHARS, CUE_MAX_S
from tests.container.fakes import (
    FakeAsr,
    FakeSortformer,
    FakeTitanet,
    silence,
    tone,
    wav_bytes as tone_wav,
)
from tests.gateway.conftest import GatewayFactory

# Voice A for 2 s, a 1.2 s pause, voice B for 1.6 s, a 0.8 s breath, then A for 9 s.
CLIP = tone_wav(
    np.concatenate(
        [tone("A", 2.0), silence(1.2), tone("B", 1.6), silence(0.8), tone("A", 9.2), silence(0.2)]
    )
)
_STAMP = r"(\d\d):(\d\d):(\d\d)[,.](\d\d\d)"


@dataclass
class Cue:
    start: float
    end: float
    text: str


def seconds(match: tuple[str, ...]) -> float:
    h, m, s, ms = (int(x) for x in match)
    return h * 3600 + m * 60 + s + ms / 1000


def parse_cues(document: str) -> list[Cue]:
    cues = []
    for block in document.strip().split("\n\n"):
        lines = block.strip().splitlines()
        for index, line in enumerate(lines):
            times = re.findall(_STAMP, line)
            if " --> " in line and len(times) == 2:
                text = " ".join(lines[index + 1 :])
                cues.append(Cue(seconds(times[0]), seconds(times[1]), text))
    return cues


@pytest.fixture
async def parakeet_server() -> AsyncIterator[str]:
    """Our speech container's real aiohttp app, its NeMo models replaced by shaped fakes."""
    asr, sortformer, titanet = FakeAsr(), FakeSortformer(), FakeTitanet()

    def loaded(model: object) -> object:
        return lambda: model

    registry = ModelRegistry(
        Loaders(
            loaded(asr),  # type: ignore[arg-type]
            loaded(sortformer),  # type: ignore[arg-type]
            loaded(titanet),  # type: ignore[arg-type]
            gpu_memory=lambda: {"free_bytes": 1, "total_bytes": 2, "allocated_bytes": 1},
        )
    )
    server = TestServer(create_app(ServerConfig(), registry), host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


async def test_upstream_sends_one_segment_for_the_clip(parakeet_server: str) -> None:
    """The premise: the container's verbose_json has one segment, and word timings."""
    form = aiohttp.FormData()
    form.add_field("file", CLIP, filename="a.wav", content_type="audio/wav")
    form.add_field("response_format", "verbose_json")
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{parakeet_server}/v1/audio/transcriptions", data=form) as resp,
    ):
        body = await resp.json()
    assert len(body["segments"]) == 1
    assert len(body["words"]) == 5 + 4 + 23


@pytest.mark.parametrize("response_format", ["srt", "vtt"])
async def test_cues_follow_words_and_pauses(
    start_gateway: GatewayFactory, parakeet_server: str, response_format: str
) -> None:
    gateway = await start_gateway(parakeet_url=parakeet_server)
    async with AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=gateway.api_key, max_retries=0
    ) as client:
        document = await client.audio.transcriptions.create(
            model="whisper-1",
            file=("clip.wav", CLIP),
            response_format=response_format,  # type: ignore[arg-type]
        )
    assert isinstance(document, str)
    cues = parse_cues(document)
    # The 1.2 s pause and the 0.8 s breath both end a cue; the 9 s run is split to stay readable.
    assert cues[0] == Cue(0.0, 1.92, "alpha alpha alpha alpha alpha")
    assert cues[1] == Cue(3.2, 4.72, "bravo bravo bravo bravo")
    assert cues[2].start == pytest.approx(5.6)
    assert len(cues) >= 4
    assert all(c.end - c.start <= CUE_MAX_S and len(c.text) <= CUE_MAX_CHARS for c in cues)
    assert all(a.end <= b.start for a, b in itertools.pairwise(cues))
    assert " ".join(c.text for c in cues).split() == ["alpha"] * 5 + ["bravo"] * 4 + ["alpha"] * 23
    assert cues[-1].end == pytest.approx(14.72)
