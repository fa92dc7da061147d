"""Wall time of the gateway's long-audio path against the simulator.

    .venv/bin/python benchmarks/diarization_long_audio.py [--minutes 6] [--chunk-s 60]
                                                          [--concurrency 2]

A conversation of real voices is sent to `/api/audio/transcribe-with-speakers` with the
long-audio threshold below its length, so it is cut into chunks that are transcribed and
diarized (with fingerprints) in parallel, `--concurrency` chunks at a time, then linked and
merged. Measured in the same run:

- per-chunk upstream time: each chunk's transcription and diarize-chunk sent straight to the
  simulator (both at once, as the gateway does), one chunk after the other;
- direct concurrent baseline: the same chunk requests straight to the simulator with the
  same concurrency limit, no gateway (what the upstream can deliver at that concurrency);
- the gateway's wall time for the whole file (decode, chunking, WAV encoding, requests,
  linking, merge).

The goal is gateway ≤ 1.10 * (chunks ÷ concurrency) * per-chunk time. That formula assumes
the upstream serves `concurrency` chunks as fast as one (a GPU with headroom). The simulated
Parakeet decodes `--decoders` transcriptions at once (pocketsphinx decoders in worker
processes, since pocketsphinx holds the GIL) and diarizes concurrently, but all of it runs
on this machine's CPU cores, so the script also measures the CPU time the upstream spends
per chunk and prints the floor the cores impose: chunks * CPU per chunk / cores. When that
floor is above the formula, the formula cannot be met here whatever the gateway does; the
ratio to the direct concurrent baseline is the gateway's own overhead.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "addon"))
sys.path.insert(0, str(ROOT))

from spark_gateway.app import create_app  # noqa: E402
from spark_gateway.audio_codec import pcm_to_wav  # noqa: E402
from spark_gateway.config import GatewayConfig, Timeouts  # noqa: E402
from spark_gateway.speakers.chunking import plan_chunks, slice_samples  # noqa: E402
from tests.sim import SimCluster, SimConfig  # noqa: E402
from tests.speakers.voices import build_conversation, wav_bytes  # noqa: E402

KEY = "sk-bench-long-audio"
RATE = 16_000


async def chunk_requests(session: aiohttp.ClientSession, url: str, wav: bytes) -> None:
    """One chunk as the gateway sends it: transcription and diarize-chunk at once."""

    async def transcribe() -> None:
        form = aiohttp.FormData()
        form.add_field("file", wav, filename="a.wav", content_type="audio/wav")
        form.add_field("model", "nvidia/parakeet-tdt-0.6b-v3")
        form.add_field("response_format", "verbose_json")
        form.add_field("timestamp_granularities[]", "word")
        async with session.post(url + "/v1/audio/transcriptions", data=form) as resp:
            resp.raise_for_status()
            await resp.read()

    async def diarize() -> None:
        form = aiohttp.FormData()
        form.add_field("file", wav, filename="a.wav", content_type="audio/wav")
        async with session.post(url + "/v1/audio/diarize-chunk", data=form) as resp:
            resp.raise_for_status()
            await resp.read()

    await asyncio.gather(transcribe(), diarize())


def cpu_seconds() -> float:
    """CPU time (user + system) of this process, where the simulator runs, and of its live
    child processes (the simulated Parakeet's recognition workers)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    total = usage.ru_utime + usage.ru_stime
    tick = os.sysconf("SC_CLK_TCK")
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if fields[1] == me:  # ppid; then utime and stime are fields 14 and 15 of stat
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


async def run(minutes: float, chunk_s: float, concurrency: int, decoders: int) -> None:
    conversation = build_conversation(["FEE078", "MEE009", "FEE083"], duration_s=minutes * 60)
    chunks = plan_chunks(conversation.samples, RATE, chunk_s=chunk_s, overlap_s=2.0)
    wavs = [pcm_to_wav(slice_samples(conversation.samples, RATE, c), RATE) for c in chunks]
    upload = wav_bytes(conversation.samples)
    sim_config = SimConfig(nodes=1, parakeet_decoders=decoders)
    async with SimCluster(sim_config) as sim, aiohttp.ClientSession() as session:
        url = sim.parakeet.url
        # Warm-up: models load, and `concurrency` decoders exist before anything is timed.
        await asyncio.gather(*(chunk_requests(session, url, w) for w in wavs[:concurrency]))
        per_chunk = []
        cpu_started = cpu_seconds()
        for wav in wavs:
            started = time.perf_counter()
            await chunk_requests(session, url, wav)
            per_chunk.append(time.perf_counter() - started)
        cpu_per_chunk = (cpu_seconds() - cpu_started) / len(wavs)
        gate = asyncio.Semaphore(concurrency)

        async def gated(wav: bytes) -> None:
            async with gate:
                await chunk_requests(session, url, wav)

        started = time.perf_counter()
        await asyncio.gather(*(gated(w) for w in wavs))
        direct = time.perf_counter() - started

        config = GatewayConfig(
            parakeet_url=url,
            api_keys=(KEY,),
            data_dir=Path("/tmp/spark-bench-gateway"),
            long_audio_threshold_s=chunk_s,
            chunk_target_s=chunk_s,
            chunk_overlap_s=2.0,
            chunk_concurrency=concurrency,
            timeouts=Timeouts(transcription=900, diarization=900),
        )
        server = TestServer(create_app(config), host="127.0.0.1")
        await server.start_server()
        try:
            form = aiohttp.FormData()
            form.add_field("file", upload, filename="meeting.wav", content_type="audio/wav")
            started = time.perf_counter()
            async with session.post(
                str(server.make_url("/api/audio/transcribe-with-speakers")),
                data=form,
                headers={"Authorization": f"Bearer {KEY}"},
            ) as resp:
                body = await resp.json()
                assert resp.status == 200, body
            gateway = time.perf_counter() - started
        finally:
            await server.close()
    mean_chunk = statistics.mean(per_chunk)
    ideal = len(chunks) / concurrency * mean_chunk
    cores = len(os.sched_getaffinity(0))
    floor = len(chunks) * cpu_per_chunk / cores
    print(
        f"{minutes:g} min of audio, {len(chunks)} chunks of <= {chunk_s:g} s, concurrency "
        f"{concurrency}, simulated Parakeet decoders {decoders}; "
        f"speakers found {body['speakers_detected']} of 3"
    )
    print(
        f"per-chunk upstream time (both calls at once): mean {mean_chunk:.2f} s "
        f"(min {min(per_chunk):.2f}, max {max(per_chunk):.2f})"
    )
    print(
        f"(chunks / concurrency) x per-chunk = {ideal:.2f} s; direct concurrent baseline "
        f"{direct:.2f} s; gateway {gateway:.2f} s"
    )
    print(
        f"upstream CPU per chunk {cpu_per_chunk:.2f} s on {cores} cores "
        f"({cpu_per_chunk / mean_chunk:.2f} cores busy per chunk); CPU floor "
        f"chunks x CPU / cores = {floor:.2f} s = {floor / ideal:.2f} x formula"
    )
    print(
        f"gateway / formula = {gateway / ideal:.3f} (goal <= 1.10); "
        f"gateway / direct concurrent = {gateway / direct:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--chunk-s", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--decoders", type=int, default=SimConfig().parakeet_decoders)
    args = parser.parse_args()
    asyncio.run(run(args.minutes, args.chunk_s, args.concurrency, args.decoders))


if __name__ == "__main__":
    main()
