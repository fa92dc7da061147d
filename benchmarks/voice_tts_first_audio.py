"""Time to first audio of a five-sentence reply: streaming TTS bridge vs non-streaming.

Against the in-process simulator (Magpie speaks with flite, so synthesis time grows with the
text like a real TTS). Three ways to get the reply spoken, each measured from the moment the
reply text starts to exist until the first audio byte is in the client's hands:

- streaming: Wyoming `synthesize-start` + `synthesize-chunk`s through the bridge (what HA
  does with a streaming TTS entity); the bridge speaks each sentence as soon as it is complete;
- plain: one Wyoming `synthesize` with the whole text through the bridge;
- baseline (non-streaming, measured directly): one Magpie `/v1/audio/synthesize` call with
  the whole reply, which is what a non-streaming bridge does;
- floor: one direct Magpie call with only the first sentence (what streaming cannot beat).

The simulator's flite runs on the same CPU cores as everything else: on a loaded machine the
figures scatter, so compare ratios within one run and use enough runs.

With `--words-per-second N` the reply is produced at an LLM's pace (streaming starts while
the text is still being written; the others must wait for all of it). Default: text at once.

    .venv/bin/python benchmarks/voice_tts_first_audio.py [--runs 5] [--words-per-second 0]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop

from custom_components.spark_control.sparklib.voice import VoiceBridgeConfig, VoiceBridges
from tests.sim import SimCluster, SimConfig

REPLY = (
    "The kitchen light is now on. The front door is locked and the alarm is armed. "
    "Outside it is twelve degrees with light rain until the evening. "
    "Your first meeting tomorrow starts at nine in the morning. "
    "I also moved the robot vacuum to the living room as you asked."
)
VOICE = "Magpie-Multilingual.EN-US.Aria"


async def _words(_words_per_second: float) -> list[str]:
    return [word + " " for word in REPLY.split(" ")]


async def _pace(words_per_second: float) -> None:
    if words_per_second > 0:
        await asyncio.sleep(1.0 / words_per_second)


async def streaming(port: int, words_per_second: float) -> float:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        start = time.perf_counter()

        async def write() -> None:
            await client.write_event(SynthesizeStart().event())
            for word in await _words(words_per_second):
                await _pace(words_per_second)
                await client.write_event(SynthesizeChunk(text=word).event())
            await client.write_event(Synthesize(text=REPLY).event())
            await client.write_event(SynthesizeStop().event())

        writer = asyncio.create_task(write())
        first = None
        while (event := await client.read_event()) is not None:
            if first is None and event.type == "audio-chunk":
                first = time.perf_counter() - start
            if event.type == "synthesize-stopped":
                break
        await writer
    assert first is not None
    return first


async def plain(port: int, words_per_second: float) -> float:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        start = time.perf_counter()
        for _word in await _words(words_per_second):
            await _pace(words_per_second)
        await client.write_event(Synthesize(text=REPLY).event())
        first = None
        while (event := await client.read_event()) is not None:
            if first is None and event.type == "audio-chunk":
                first = time.perf_counter() - start
            if event.type == "audio-stop":
                break
    assert first is not None
    return first


async def direct(
    session: aiohttp.ClientSession, url: str, words_per_second: float, text: str = REPLY
) -> float:
    start = time.perf_counter()
    for _word in await _words(words_per_second):
        await _pace(words_per_second)
    form = aiohttp.FormData(default_to_multipart=True)
    for name, value in (
        ("text", text),
        ("language", "en-US"),
        ("voice", VOICE),
        ("sample_rate_hz", "22050"),
        ("encoding", "LINEAR_PCM"),
    ):
        form.add_field(name, value)
    async with session.post(f"{url}/v1/audio/synthesize", data=form) as resp:
        resp.raise_for_status()
        await resp.read()
    return time.perf_counter() - start


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--words-per-second", type=float, default=0.0)
    args = parser.parse_args()
    async with SimCluster(SimConfig(nodes=1)) as sim, aiohttp.ClientSession() as session:
        bridges = VoiceBridges(
            session,
            VoiceBridgeConfig(sim.parakeet.url, sim.magpie.url, 0, 0, host="127.0.0.1"),
        )
        await bridges.start()
        try:
            results: dict[str, list[float]] = {
                "streaming": [],
                "plain": [],
                "direct": [],
                "first": [],
            }
            await plain(bridges.tts.port, 0)  # warm-up: flite and the voice list
            for _ in range(args.runs):
                wps = args.words_per_second
                results["streaming"].append(await streaming(bridges.tts.port, wps))
                results["plain"].append(await plain(bridges.tts.port, wps))
                results["direct"].append(await direct(session, sim.magpie.url, wps))
                first_sentence = REPLY.split(". ")[0] + "."
                results["first"].append(await direct(session, sim.magpie.url, 0, first_sentence))
        finally:
            await bridges.async_stop()
    medians = {name: statistics.median(values) for name, values in results.items()}
    pace = f"{args.words_per_second:g} words/s" if args.words_per_second else "all text at once"
    print(f"Time to first audio, five-sentence reply ({len(REPLY)} chars), {pace}")
    print(f"{args.runs} runs, medians")
    for name, label in (
        ("streaming", "bridge, streaming (synthesize-start/chunk/stop)"),
        ("plain", "bridge, plain synthesize (sentence-pipelined)"),
        ("direct", "baseline: one Magpie request for the whole reply"),
        ("first", "floor: one Magpie request for the first sentence"),
    ):
        print(f"  {label:<52} median {medians[name] * 1000:8.1f} ms")
    ratio = medians["streaming"] / medians["direct"]
    print(f"  streaming / non-streaming baseline: {ratio:.2f}x (goal <= 0.3x)")
    print(f"  plain bridge / non-streaming baseline: {medians['plain'] / medians['direct']:.2f}x")
    overhead = (medians["streaming"] - medians["first"]) * 1000
    print(f"  streaming bridge minus the first-sentence floor: {overhead:.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
