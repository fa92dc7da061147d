"""What the STT bridge adds between the end of the audio and the transcript.

Against the in-process simulator (Parakeet recognizes with pocketsphinx). For one short spoken
command (made by the simulator's Magpie at 16 kHz), alternately:

- direct (baseline, hand-written): what a good client does with the WAV in hand: one POST
  of one ready multipart body (aiohttp's FormData rendered before speech ends, the WAV put
  in it) to Parakeet's `/v1/audio/transcriptions` on a kept-alive aiohttp session; timed
  from just before joining the body to the parsed JSON;
- bridge: `transcribe` + `audio-start` + the audio in 20 ms chunks through the Wyoming STT
  bridge (not timed: a satellite streams it while the user speaks, so the bridge has taken it
  all in when speech ends; a 50 ms pause stands for that); timed from writing `audio-stop` to
  reading the `transcript` event. The direct call waits the same 50 ms first: waking from an
  idle moment costs this box about 0.2 ms, and both sides must pay it alike.

Recognition time is the same in both and dominates, so the overhead is reported as the median
of the paired differences (bridge minus the direct call next to it). Recognition time also
varies with the machine's load, so the same pairs are run a second time against a zero-work
stand-in of Parakeet's API (same multipart request, fixed answer): that isolates what the
bridge itself costs. The bridge's own Parakeet client is also timed, so the time the bridge
spends outside that HTTP call (the hop to the bridge and back, event parsing, finishing the
WAV, writing the transcript) is shown on its own. The floor any bridge pays, one extra
loopback TCP round trip through asyncio streams after the same pause, is measured in the
same run. For comparison, wyoming_openai adds 2-3.5 ms measured this way (its README).

    .venv/bin/python benchmarks/voice_stt_overhead.py [--pairs 60] [--instant-pairs 300]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import sys
import time
import wave
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient

from custom_components.spark_control.sparklib.voice import (
    ParakeetClient,
    VoiceBridgeConfig,
    VoiceBridges,
)
from tests.sim import SimCluster, SimConfig

COMMAND = "Turn on the lights."
RATE = 16000


async def speech(session: aiohttp.ClientSession, magpie_url: str) -> bytes:
    """16 kHz mono 16-bit PCM of the command, from the simulator's Magpie."""
    form = aiohttp.FormData(default_to_multipart=True)
    for name, value in (
        ("text", COMMAND),
        ("language", "en-US"),
        ("voice", "Magpie-Multilingual.EN-US.Aria"),
        ("sample_rate_hz", str(RATE)),
        ("encoding", "LINEAR_PCM"),
    ):
        form.add_field(name, value)
    async with session.post(f"{magpie_url}/v1/audio/synthesize", data=form) as resp:
        resp.raise_for_status()
        body = await resp.read()
    with wave.open(io.BytesIO(body)) as wav:
        assert wav.getframerate() == RATE
        return bytes(wav.readframes(wav.getnframes()))


def wav_bytes(pcm: bytes) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setframerate(RATE)
        wav.setsampwidth(2)
        wav.setnchannels(1)
        wav.writeframes(pcm)
    return buffer.getvalue()


PAUSE = 0.05  # the moment between the last chunk streamed and the end of speech
PLACEHOLDER = b"<the WAV file>"


async def request_framing() -> tuple[bytes, bytes, str]:
    """Parakeet's multipart request rendered by aiohttp, split where the WAV goes."""
    form = aiohttp.FormData()
    form.add_field("file", PLACEHOLDER, filename="audio.wav", content_type="audio/wav")
    form.add_field("model", "parakeet-tdt-0.6b-v3")
    form.add_field("language", "en")
    form.add_field("response_format", "json")
    multipart = form()
    head, _, tail = (await multipart.as_bytes()).partition(PLACEHOLDER)
    return head, tail, multipart.content_type


async def direct(
    session: aiohttp.ClientSession, parakeet_url: str, wav: bytes
) -> tuple[float, str]:
    head, tail, content_type = await request_framing()
    await asyncio.sleep(PAUSE)
    start = time.perf_counter()
    async with session.post(
        f"{parakeet_url}/v1/audio/transcriptions",
        data=head + wav + tail,
        headers={"Content-Type": content_type},
    ) as resp:
        resp.raise_for_status()
        text = (await resp.json())["text"]
    return time.perf_counter() - start, text


async def echo_floor(rounds: int) -> list[float]:
    """One loopback round trip through asyncio streams after the same pause: any bridge's floor."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
    times: list[float] = []
    try:
        for _ in range(rounds):
            await asyncio.sleep(PAUSE)
            start = time.perf_counter()
            writer.write(b'{"type": "audio-stop"}\n')
            await writer.drain()
            await reader.readline()
            times.append(time.perf_counter() - start)
    finally:
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
    return times


async def bridge(port: int, pcm: bytes) -> tuple[float, str]:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=RATE, width=2, channels=1).event())
        for offset in range(0, len(pcm), 640):
            chunk = AudioChunk(rate=RATE, width=2, channels=1, audio=pcm[offset : offset + 640])
            await client.write_event(chunk.event())
        # A satellite streams in real time, so the bridge has taken every chunk in when the
        # speaker stops; give it that moment instead of timing its backlog.
        await asyncio.sleep(PAUSE)
        start = time.perf_counter()
        await client.write_event(AudioStop().event())
        while (event := await client.read_event()) is not None:
            if event.type == "transcript":
                return time.perf_counter() - start, str(event.data["text"])
    raise RuntimeError("bridge closed without a transcript")


class TimedParakeetClient(ParakeetClient):
    """The bridge's own Parakeet client, recording how long each HTTP call takes."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        super().__init__(session, base_url)
        self.calls: list[float] = []

    async def transcribe_upload(self, body: bytes | bytearray, content_type: str) -> str:
        start = time.perf_counter()
        try:
            return await super().transcribe_upload(body, content_type)
        finally:
            self.calls.append(time.perf_counter() - start)


Results = tuple[list[float], list[float], list[float], set[str]]


async def measure(
    session: aiohttp.ClientSession, parakeet_url: str, magpie_url: str, pcm: bytes, pairs: int
) -> Results:
    bridges = VoiceBridges(
        session, VoiceBridgeConfig(parakeet_url, magpie_url, 0, 0, host="127.0.0.1")
    )
    timed = TimedParakeetClient(session, parakeet_url)
    bridges.stt_bridge.parakeet = timed
    await bridges.start()
    wav = wav_bytes(pcm)
    directs: list[float] = []
    bridged: list[float] = []
    texts: set[str] = set()
    try:
        await direct(session, parakeet_url, wav)  # warm-up
        await bridge(bridges.stt.port, pcm)
        for index in range(pairs):
            # Alternate which goes first so neither always follows the other.
            order = ("direct", "bridge") if index % 2 else ("bridge", "direct")
            for kind in order:
                if kind == "direct":
                    seconds, text = await direct(session, parakeet_url, wav)
                    directs.append(seconds)
                else:
                    seconds, text = await bridge(bridges.stt.port, pcm)
                    bridged.append(seconds)
                texts.add(text)
    finally:
        await bridges.async_stop()
    outside = [b - c for b, c in zip(bridged, timed.calls[-len(bridged) :], strict=True)]
    return directs, bridged, outside, texts


def report(title: str, results: Results) -> None:
    directs, bridged, outside, texts = results

    def ms(values: list[float]) -> float:
        return statistics.median(values) * 1000

    paired = [b - d for b, d in zip(bridged, directs, strict=True)]
    print(title)
    print(f"  recognized: {sorted(texts)}")
    print(f"  direct Parakeet call (baseline)  median {ms(directs):7.2f} ms")
    print(f"  through the Wyoming bridge       median {ms(bridged):7.2f} ms")
    print(f"  ratio bridge / direct (medians): {ms(bridged) / ms(directs):.3f}x")
    print(f"  bridge minus direct, difference of medians: {ms(bridged) - ms(directs):.2f} ms")
    print(f"  bridge minus direct, median of paired differences: {ms(paired):.2f} ms")
    print(f"  bridge time outside its Parakeet HTTP call, median: {ms(outside):.2f} ms")


async def instant_parakeet() -> tuple[web.AppRunner, str]:
    """Parakeet's transcription API with no recognizer behind it: isolates the bridge's cost."""

    async def transcriptions(request: web.Request) -> web.Response:
        form = await request.post()
        assert form["file"]
        return web.json_response({"text": COMMAND})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/audio/transcriptions", transcriptions)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pairs", type=int, default=60)
    parser.add_argument("--instant-pairs", type=int, default=300)
    args = parser.parse_args()
    async with SimCluster(SimConfig(nodes=1)) as sim, aiohttp.ClientSession() as session:
        pcm = await speech(session, sim.magpie.url)
        clip = f"{len(pcm) / 2 / RATE:.2f} s clip"
        results = await measure(session, sim.parakeet.url, sim.magpie.url, pcm, args.pairs)
        report(f"STT, end of audio -> transcript, simulator's recognizer, {clip}", results)
        runner, url = await instant_parakeet()
        try:
            results = await measure(session, url, sim.magpie.url, pcm, args.instant_pairs)
        finally:
            await runner.cleanup()
        report(f"STT, same, against a zero-work Parakeet API (bridge cost alone), {clip}", results)
        floor = statistics.median(await echo_floor(args.instant_pairs)) * 1000
        print(f"floor: a bare asyncio loopback round trip after the same pause: {floor:.2f} ms")
    print("goal: overhead <= 1 ms median (wyoming_openai: 2-3.5 ms)")


if __name__ == "__main__":
    asyncio.run(main())
