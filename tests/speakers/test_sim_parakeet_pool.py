"""The simulated Parakeet decodes several requests at once, as a GPU server does.

The long-audio path sends `chunk_concurrency` transcriptions at a time; a simulator that
decoded them one after another would make its wall-time benchmark meaningless. Recognition
runs in `parakeet_decoders` worker processes (pocketsphinx holds the GIL, so threads would
take turns), each with its own decoder; concurrent requests must keep their own words. The
overlap is taken from when each decode ran inside its worker.
"""

from __future__ import annotations

import asyncio
import os
import signal

import aiohttp
import psutil
import pytest

from tests.sim import SimCluster, SimConfig
from tests.sim.recognizer import Recognizer

SENTENCES = (
    "Please turn on the kitchen lights and set the temperature to twenty degrees",
    "Open the garage door and close the window in the bedroom",
)


async def _speech(http: aiohttp.ClientSession, magpie_url: str, text: str) -> bytes:
    fields = {
        "text": text,
        "language": "en-US",
        "voice": "Magpie-Multilingual.EN-US.Aria",
        "sample_rate_hz": "16000",
        "encoding": "LINEAR_PCM",
    }
    form = aiohttp.FormData(fields)
    async with http.post(f"{magpie_url}/v1/audio/synthesize", data=form) as resp:
        assert resp.status == 200
        return await resp.read()


async def _transcribe(http: aiohttp.ClientSession, parakeet_url: str, wav: bytes) -> str:
    form = aiohttp.FormData()
    form.add_field("file", wav, filename="speech.wav", content_type="audio/wav")
    async with http.post(f"{parakeet_url}/v1/audio/transcriptions", data=form) as resp:
        assert resp.status == 200
        return str((await resp.json())["text"]).lower()


def _overlap(reference: str, heard: str) -> float:
    expected = set(reference.lower().split())
    return len(expected & set(heard.replace(".", "").split())) / len(expected)


@pytest.mark.parametrize("decoders", [1, 2])
async def test_concurrent_transcriptions_decode_at_once(decoders: int) -> None:
    async with (
        SimCluster(SimConfig(nodes=1, parakeet_decoders=decoders)) as sim,
        aiohttp.ClientSession() as http,
    ):
        wavs = [await _speech(http, sim.magpie.url, text) for text in SENTENCES]
        # Each sentence twice, all at once: more requests than decoders.
        jobs = [*wavs, *wavs]
        texts = await asyncio.gather(*(_transcribe(http, sim.parakeet.url, w) for w in jobs))
        recognizer = sim.parakeet.recognizer
        assert recognizer.peak_concurrent == decoders
        for index, text in enumerate(texts):
            own, other = SENTENCES[index % 2], SENTENCES[1 - index % 2]
            assert _overlap(own, text) >= 0.6, (own, text)
            assert _overlap(own, text) > _overlap(other, text), (own, text)
        assert sim.parakeet.transcriptions == len(jobs)


def test_at_least_one_decoder() -> None:
    with pytest.raises(ValueError, match="parakeet_decoders"):
        SimConfig(parakeet_decoders=0)


async def test_ctrl_c_on_the_process_group_leaves_the_decoders_running() -> None:
    """Ctrl-C on `./scripts/demo` reaches every process of its group: the decoders ignore it
    (the simulator stops them) instead of dying with a KeyboardInterrupt traceback."""
    before = {child.pid for child in psutil.Process().children()}
    recognizer = Recognizer(1)
    try:
        silence = bytes(16000 * 2)  # 1 s of 16 kHz 16-bit silence
        first = await recognizer.recognize(silence)
        workers = [c for c in psutil.Process().children() if c.pid not in before]
        assert workers
        for worker in workers:
            os.kill(worker.pid, signal.SIGINT)
        await asyncio.sleep(0.5)
        assert all(worker.is_running() for worker in workers)
        assert await recognizer.recognize(silence) == first  # the same decoder, still there
    finally:
        recognizer.close()
