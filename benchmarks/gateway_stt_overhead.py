"""What the gateway adds to a transcription, against posting the same upload to Parakeet directly.

    .venv/bin/python benchmarks/gateway_stt_overhead.py [--rounds 200]

Three processes: an instant fake Parakeet (reads the multipart upload, answers `{"text"}` at
once, so only transport and the gateway's own work are measured), the gateway
(`python -m spark_gateway`) and this client. Direct and gateway requests alternate in the same
run; the figure is the median of the paired differences. Inputs: 1 s of 16 kHz mono PCM16 WAV
(Parakeet's own format: passed through undecoded) and 1 s of webm/opus as a browser records it
(decoded to 16 kHz WAV). Targets: +1 ms for the WAV, +3 ms for webm/opus.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "addon")]

from benchmarks.gateway_relay import free_port, wait_for  # noqa: E402
from spark_gateway.audio_codec import pcm_to_wav  # noqa: E402
from tests.gateway.audio_files import encode_with_pyav  # noqa: E402

KEY = "sk-bench-0123456789"
TARGETS_MS = {"wav 16 kHz mono": 1.0, "webm/opus": 3.0}


async def serve_fake_parakeet(port: int) -> None:
    """Child-process mode: answer every transcription at once, after reading the whole upload."""

    async def transcribe(request: web.Request) -> web.Response:
        form = await request.post()
        upload = form["file"]
        size = len(upload.file.read()) if isinstance(upload, web.FileField) else 0
        return web.json_response({"text": f"{size} bytes"})

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/audio/transcriptions", transcribe)
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def inputs() -> dict[str, tuple[str, bytes]]:
    """One second of a voiced tone in both upload formats."""
    t = np.arange(16000) / 16000
    samples = (np.sin(2 * np.pi * 180 * t) * np.sin(2 * np.pi * 3 * t) * 9000).astype(np.int16)
    return {
        "wav 16 kHz mono": ("speech.wav", pcm_to_wav(samples, 16000)),
        "webm/opus": ("speech.webm", encode_with_pyav(samples, 16000, "webm", "libopus")),
    }


async def post(session: aiohttp.ClientSession, url: str, name: str, audio: bytes) -> float:
    form = aiohttp.FormData()
    form.add_field("file", audio, filename=name, content_type="application/octet-stream")
    form.add_field("model", "whisper-1")
    start = time.perf_counter()
    async with session.post(
        f"{url}/v1/audio/transcriptions", data=form, headers={"Authorization": f"Bearer {KEY}"}
    ) as resp:
        await resp.read()
        assert resp.status == 200, (resp.status, await resp.text())
    return time.perf_counter() - start


async def run(rounds: int) -> int:
    work = Path(tempfile.mkdtemp(prefix="stt-bench-"))
    parakeet_port, gateway_port = free_port(), free_port()
    direct = f"http://127.0.0.1:{parakeet_port}"
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    config = work / "gateway.json"
    config.write_text(
        json.dumps(
            {
                "host": "127.0.0.1",
                "port": gateway_port,
                "parakeet_url": direct,
                "api_keys": [KEY],
                "data_dir": str(work),
                "log_level": "warning",
            }
        )
    )
    fake = subprocess.Popen(
        [sys.executable, __file__, "--serve-parakeet", str(parakeet_port)], cwd=ROOT
    )
    gateway = subprocess.Popen(
        [sys.executable, "-m", "spark_gateway", "--config", str(config)],
        env={**os.environ, "PYTHONPATH": str(ROOT / "addon")},
    )
    failed = False
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            await wait_for(f"{direct}/health", session)
            await wait_for(f"{gateway_url}/health", session)
            print(f"1 s uploads, {rounds} paired rounds (direct and gateway alternate)")
            print(f"{'input':<18} {'direct p50':>11} {'gateway p50':>12} {'added p50':>10}  target")
            for label, (name, audio) in inputs().items():
                for _ in range(20):  # warm up connections, the decoder pool, code paths
                    await post(session, direct, name, audio)
                    await post(session, gateway_url, name, audio)
                times: dict[str, list[float]] = {"direct": [], "gateway": []}
                for index in range(rounds):
                    order = ("direct", "gateway") if index % 2 == 0 else ("gateway", "direct")
                    for target in order:
                        url = direct if target == "direct" else gateway_url
                        times[target].append(await post(session, url, name, audio))
                added = statistics.median(
                    g - d for g, d in zip(times["gateway"], times["direct"], strict=True)
                )
                target_ms = TARGETS_MS[label]
                met = added * 1000 <= target_ms
                failed |= not met
                print(
                    f"{label:<18} {statistics.median(times['direct']) * 1000:8.2f} ms "
                    f"{statistics.median(times['gateway']) * 1000:9.2f} ms "
                    f"{added * 1000:+7.2f} ms  <= {target_ms:g} ms "
                    f"({added * 1000 / target_ms:.2f}x) {'met' if met else 'MISSED'}"
                )
    finally:
        for process in (gateway, fake):
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)  # the gateway's config and data folder
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-parakeet":
        asyncio.run(serve_fake_parakeet(int(sys.argv[2])))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=200)
    sys.exit(asyncio.run(run(parser.parse_args().rounds)))
