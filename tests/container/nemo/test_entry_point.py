"""`python -m parakeet_server`, the image's CMD, as its own process: settings from the
environment, models from HF_HOME's hub cache, the real NeMo classes on CPU."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.container.fakes import wav_bytes
from tests.container.nemo.conftest import TinyModels, speech_like
from tests.paths import REPO

CONTAINER = REPO / "parakeet_container"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# web.run_app prints this once its port is open: the server's own word that it serves.
SERVING = b"======== Running on "
# NeMo's import and the models' restore take a while on a loaded 2-core machine.
START_DEADLINE = 240


async def wait_serving(process: asyncio.subprocess.Process, stderr: Path) -> None:
    """Read the server's stdout until it says it serves; its exit before that fails the test
    with the end of its log."""
    assert process.stdout is not None
    async with asyncio.timeout(START_DEADLINE):
        async for line in process.stdout:
            if line.startswith(SERVING):
                return
    await process.wait()
    raise AssertionError(
        f"the server exited ({process.returncode}) before serving:\n{stderr.read_text()[-2000:]}"
    )


@pytest.mark.timeout(START_DEADLINE + 60)
async def test_the_image_command_serves_the_cached_models(
    tiny_models: TinyModels, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "HF_HOME": str(tiny_models.hf_home),  # the image: HF_HOME=/models/hf on the volume
        "HF_HUB_OFFLINE": "1",
        "PARAKEET_HOST": "127.0.0.1",
        "PARAKEET_PORT": str(port),
        "PARAKEET_DEVICE": "cpu",
        "PYTHONUNBUFFERED": "1",  # the "Running on" line arrives as it is printed
    }
    env.pop("HF_HUB_CACHE", None)
    # NeMo logs plenty: to a file, so a full pipe never stalls the server.
    stderr = tmp_path / "server.log"
    with stderr.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "parakeet_server",
            cwd=CONTAINER,  # the image's WORKDIR /app holds parakeet_server/
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_serving(process, stderr)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/health") as resp:
                health = await resp.json()
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
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(30):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
