"""`python -m tests.sim` as a separate process: endpoints file, real service, clean SIGTERM stop."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import aiohttp
import asyncssh

from tests.paths import REPO
from tests.sim import generate_client_key

REPO_ROOT = REPO


async def test_process_mode_serves_until_sigterm(tmp_path: Path) -> None:
    private_pem, public_line = generate_client_key()
    key_file = tmp_path / "client.pub"
    key_file.write_text(public_line + "\n")
    endpoints_file = tmp_path / "endpoints.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.sim",
        "--nodes",
        "1",
        "--authorized-key-file",
        str(key_file),
        "--write-endpoints",
        str(endpoints_file),
        "--load-seconds",
        "0.2",
        "--log-level",
        "INFO",
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        async with asyncio.timeout(30):  # what the simulator logs once the file is in place
            while b"endpoints written to" not in (line := await process.stderr.readline()):
                assert line, "the simulator exited early"
        endpoints = json.loads(endpoints_file.read_text())
        (node,) = endpoints["nodes"]
        assert set(endpoints["services"]) == {"vllm", "parakeet", "magpie"}
        assert node["host_key_fingerprint"].startswith("SHA256:")

        async with aiohttp.ClientSession() as http:
            async with http.get(f"{endpoints['services']['vllm']['url']}/health") as response:
                assert response.status == 200
            async with http.get(f"{endpoints['services']['magpie']['url']}/v1/health/ready") as r:
                assert r.status == 200
        known_hosts = asyncssh.import_known_hosts(
            f"[{node['host']}]:{node['ssh_port']} {node['host_public_key']}\n"
        )
        async with asyncssh.connect(
            node["host"],
            node["ssh_port"],
            username=endpoints["username"],
            client_keys=[asyncssh.import_private_key(private_pem)],
            known_hosts=known_hosts,
        ) as conn:
            result = await conn.run("docker ps -a --format '{{json .}}'")
        assert len(result.stdout.splitlines()) == 3  # one node hosts all three containers
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)  # a loaded machine's stop
    assert process.returncode == 0, stderr.decode()
