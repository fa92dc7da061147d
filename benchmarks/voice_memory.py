"""Is the bridges' memory flat over many sequential requests?

Starts the standalone bridges (`python -m custom_components.spark_control.sparklib.voice`) as
their own process against the in-process simulator, then sends N sequential requests,
alternating STT (a spoken command, 16 kHz, through Parakeet's real recognizer) and plain TTS
(a short sentence through Magpie's flite), with a streaming TTS request every tenth time.
The bridge process's resident memory (VmRSS from /proc) is sampled every 100 requests; the
first 100 are warm-up (allocator pools, imports on first use). As a baseline, the same is
read for an idle interpreter that imported the same modules.

    .venv/bin/python benchmarks/voice_memory.py [--requests 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop

from tests.sim import SimCluster, SimConfig

ROOT = Path(__file__).resolve().parent.parent
SHORT = "Okay, done."


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def read_until(client: AsyncTcpClient, stop: str) -> int:
    audio = 0
    while (event := await client.read_event()) is not None:
        if event.type == "audio-chunk" and event.payload:
            audio += len(event.payload)
        if event.type == "error":
            raise RuntimeError(event.data)
        if event.type == stop:
            return audio
    raise RuntimeError(f"closed before {stop}")


async def tts_plain(port: int) -> bytes:
    pcm = bytearray()
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Synthesize(text=SHORT).event())
        while (event := await client.read_event()) is not None:
            if event.type == "audio-chunk" and event.payload:
                pcm += event.payload
            if event.type == "audio-stop":
                return bytes(pcm)
    raise RuntimeError("no audio-stop")


async def tts_streaming(port: int) -> None:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(SynthesizeStart().event())
        for word in ["Okay.", "It", "is", "done", "now."]:
            await client.write_event(SynthesizeChunk(text=word + " ").event())
        await client.write_event(SynthesizeStop().event())
        assert await read_until(client, "synthesize-stopped") > 0


async def stt(port: int, pcm: bytes, rate: int) -> None:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=rate, width=2, channels=1).event())
        for offset in range(0, len(pcm), 3200):
            chunk = AudioChunk(rate=rate, width=2, channels=1, audio=pcm[offset : offset + 3200])
            await client.write_event(chunk.event())
        await client.write_event(AudioStop().event())
        await read_until(client, "transcript")


async def idle_baseline() -> int:
    code = (
        "import time, aiohttp, numpy, wyoming.server;"
        "import custom_components.spark_control.sparklib.voice.bridges;"
        "print('ready', flush=True); time.sleep(30)"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    await process.stdout.readline()
    await asyncio.sleep(0.5)
    rss = rss_kib(process.pid)
    process.kill()
    await process.wait()
    return rss


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    idle = await idle_baseline()
    async with SimCluster(SimConfig(nodes=1)) as sim, aiohttp.ClientSession():
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "custom_components.spark_control.sparklib.voice",
            "--parakeet",
            sim.parakeet.url,
            "--magpie",
            sim.magpie.url,
            "--stt-port",
            "0",
            "--tts-port",
            "0",
            "--host",
            "127.0.0.1",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        ports = {}
        for _ in range(2):
            kind, uri = (await process.stdout.readline()).decode().split()
            ports[kind] = int(uri.rsplit(":", 1)[1])
        try:
            # The STT clip is the bridge's own TTS output (22.05 kHz, resampled by the bridge).
            speech = await tts_plain(ports["tts"])
            samples: list[tuple[int, int]] = [(0, rss_kib(process.pid))]
            for index in range(1, args.requests + 1):
                if index % 10 == 0:
                    await tts_streaming(ports["tts"])
                elif index % 2:
                    await stt(ports["stt"], speech, 22050)
                else:
                    await tts_plain(ports["tts"])
                if index % 100 == 0:
                    samples.append((index, rss_kib(process.pid)))
        finally:
            process.send_signal(signal.SIGTERM)
            await process.wait()
    print(f"Bridge process memory over {args.requests} sequential requests (VmRSS)")
    print(f"  idle interpreter with the same imports (baseline): {idle / 1024:.1f} MiB")
    for index, rss in samples:
        print(f"  after {index:5d} requests: {rss / 1024:7.1f} MiB")
    warm = samples[1][1] if len(samples) > 1 else samples[0][1]
    last = samples[-1][1]
    per_request = (last - warm) * 1024 / max(1, samples[-1][0] - samples[1][0])
    growth = (last - warm) / 1024
    print(f"  growth after warm-up: {growth:+.1f} MiB ({per_request:+.0f} bytes/request)")


if __name__ == "__main__":
    asyncio.run(main())
