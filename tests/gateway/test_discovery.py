"""Supervisor discovery announcement, and the gateway run as a process (`python -m`)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp

from spark_gateway.config import GatewayConfig
from spark_gateway.discovery import announce, gateway_url
from tests.gateway.conftest import FakeHomeAssistant
from tests.gateway.gateway_process import free_port, until_listening
from tests.paths import REPO
from tests.sim import SimCluster

ADDON_DIR = REPO / "addon"


async def test_announce_sends_url_and_key(fake_ha: FakeHomeAssistant) -> None:
    async with aiohttp.ClientSession() as session:
        uuid = await announce(
            session,
            token=fake_ha.token,
            url="http://local-spark-gateway:8080",
            api_key="sk-spark-abc",
            supervisor_url=fake_ha.url,
        )
        refused = await announce(
            session, token="wrong", url="http://x:1", api_key=None, supervisor_url=fake_ha.url
        )
        unreachable = await announce(
            session, token="t", url="http://x:1", api_key=None, supervisor_url="http://127.0.0.1:9"
        )
    assert uuid == "d1c0ffee"
    assert refused is None
    assert unreachable is None
    assert fake_ha.discoveries == [
        {
            "service": "spark_control",
            "config": {"url": "http://local-spark-gateway:8080", "api_key": "sk-spark-abc"},
        }
    ]


def test_announced_url() -> None:
    assert gateway_url(GatewayConfig(public_url="https://gw.lan")) == "https://gw.lan"
    assert gateway_url(GatewayConfig(port=8080)) == f"http://{socket.gethostname()}:8080"


async def test_runs_as_a_process(sim: SimCluster, tmp_path: Path) -> None:
    """`python -m spark_gateway --config FILE` outside Supervisor, as HA Container users run it."""
    port = free_port()
    config = tmp_path / "gateway.json"
    config.write_text(
        json.dumps(
            {
                "host": "127.0.0.1",
                "port": port,
                "vllm_url": sim.vllm.url,
                "data_dir": str(tmp_path / "data"),
            }
        )
    )
    env = {**os.environ, "PYTHONPATH": str(ADDON_DIR)}
    env.pop("SUPERVISOR_TOKEN", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "spark_gateway",
        "--config",
        str(config),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        await until_listening(process.stdout, lines)
        async with aiohttp.ClientSession() as session:
            key = (tmp_path / "data" / "api_key").read_text().strip()
            async with session.get(
                f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": f"Bearer {key}"}
            ) as resp:
                assert resp.status == 200
                assert (await resp.json())["data"][0]["id"] == sim.config.served_model
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    log = "".join(lines) + output.decode()
    assert process.returncode == 0, log
    # The generated key is printed once so the owner can copy it.
    assert (
        f"generated gateway API key (shown once, stored in {tmp_path / 'data' / 'api_key'}): {key}"
        in log
    )


async def test_bad_config_exits_with_message(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("default_speech_format: ogg\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "spark_gateway",
        "--config",
        str(config),
        env={**os.environ, "PYTHONPATH": str(ADDON_DIR)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 2
    assert "default_speech_format" in output.decode()
