"""`python -m parakeet_server`, the image's CMD, as its own process: settings from the
environment, models from HF_HOME's hub cache, the real NeMo classes on CPU."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys

import aiohttp

from tests.container.fakes import wav_bytes
from tests.container.nemo.conftest import TinyModels, speech_like
from tests.paths import REPO

CONTAINER = REPO / "parakeet_container"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_the_image_command_serves_the_cached_models(tiny_models: TinyModels) -> None:
    port = free_port()
    env = {
        **os.environ,
        "HF_HOME": str(tiny_models.hf_home),  # the image: HF_HOME=/models/hf on the volume
        "HF_HUB_OFFLINE": "1",
        "PARAKEET_HOST": "127.0.0.1",
        "PARAKEET_PORT": str(port),
        "PARAKEET_DEVICE": "cpu",
    }
    env.pop("HF_HUB_CACHE", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "parakeet_server"],
        cwd=CONTAINER,  # the image's WORKDIR /app holds parakeet_server/
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(240):  # NeMo's import takes a while on a busy CPU
                assert process.poll() is None, process.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
                try:
                    async with session.get(f"{url}/health") as resp:
                        health = await resp.json()
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.5)
            else:
                raise AssertionError("the server did not answer /health within 120 s")
            assert health["models"]["asr"] == {
                "name": "nvidia/parakeet-tdt-0.6b-v3",
                "loaded": False,
            }
            form = aiohttp.FormData()
            form.add_field("file", wav_bytes(speech_like(1.0)), filename="a.wav")
            async with session.post(f"{url}/v1/audio/transcriptions", data=form) as resp:
                assert resp.status == 200
                assert await resp.json() == {"text": " ".join([tiny_models.word] * 4)}
            async with session.get(f"{url}/health") as resp:
                assert (await resp.json())["models"]["asr"]["loaded"] is True
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stderr.close()  # type: ignore[union-attr]
