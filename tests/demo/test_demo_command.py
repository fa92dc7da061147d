"""`./scripts/demo`: every part comes up, `endpoints.json` says where, Ctrl-C leaves nothing.

The demo runs as the README's command does (a separate process tree, real Home Assistant), with
its state in a temporary directory so it does not disturb a developer's own `.demo/`.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[2]
STARTUP_LIMIT = 300.0


def _get(url: str, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
        return response.status, json.loads(body) if body[:1] in (b"{", b"[") else body


def _wait_for_endpoints(proc: subprocess.Popen[bytes], path: Path) -> dict[str, Any]:
    deadline = time.monotonic() + STARTUP_LIMIT
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        if path.exists():
            return dict(json.loads(path.read_text()))
        time.sleep(1)
    raise AssertionError("the demo did not write endpoints.json in time")


def _port_open(url: str) -> bool:
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


def test_demo_comes_up_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "scripts" / "run_demo.py"),
            "--demo-dir",
            str(tmp_path),
            "--load-seconds",
            "1",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        endpoints = _wait_for_endpoints(proc, tmp_path / "endpoints.json")
        tree = psutil.Process(proc.pid).children(recursive=True)

        # The simulator, the gateway and Home Assistant all answer at the URLs written down.
        assert _get(endpoints["simulator"]["services"]["vllm"]["url"] + "/health")[0] == 200
        gateway = endpoints["gateway"]
        assert _get(gateway["url"] + "/health")[0] == 200
        status, models = _get(gateway["openai_base_url"] + "/models", gateway["api_key"])
        assert status == 200
        assert any(m["id"] == "RedHatAI/Qwen3.6-35B-A3B-NVFP4" for m in models["data"])

        ha = endpoints["home_assistant"]
        token = ha["long_lived_access_token"]
        status, states = _get(ha["url"] + "/api/states", token)
        assert status == 200
        ours = {s["entity_id"]: s["state"] for s in states if "demo_cluster" in s["entity_id"]}
        selects = [e for e in ours if e.startswith("select.")]
        assert selects, ours
        assert ours[selects[0]] == "Qwen3.6 35B-A3B (NVFP4)"  # the select shows display names
        assert any(e.startswith("binary_sensor.") and v == "on" for e, v in ours.items())
        assert endpoints["wyoming"]["stt"].startswith("tcp://")
        assert _port_open(endpoints["wyoming"]["stt"])

        # Ctrl-C reaches the orchestrator, which stops every process it started.
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=90) == 0
        _gone, alive = psutil.wait_procs(tree, timeout=30)
        assert alive == []
        assert not _port_open(gateway["url"])
        assert not _port_open(ha["url"])
    finally:
        # Also after a failed assertion: Ctrl-C lets the demo stop its children (each runs in
        # its own session, so killing the orchestrator alone would leave HA and the gateway).
        if proc.poll() is None:
            leftovers = psutil.Process(proc.pid).children(recursive=True)
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for child in leftovers:
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
