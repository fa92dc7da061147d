"""What `./scripts/demo` prints: it says when the Wyoming bridges are down, and why."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_demo", ROOT / "scripts" / "run_demo.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ENDPOINTS = {
    "simulator": {"nodes": [], "services": {}},
    "gateway": {"openai_base_url": "http://127.0.0.1:1/v1", "api_key": "sk-x"},
    "home_assistant": {
        "url": "http://127.0.0.1:2",
        "username": "demo",
        "password": "spark-demo",
        "dashboard": "http://127.0.0.1:2/spark-control/x",
    },
}


def test_bridges_down_are_reported(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    down = {"cluster": "Demo cluster", "stt_port": "10310", "tts_port": "10210"}
    down["error"] = "Address already in use"
    _run_demo().print_summary({**ENDPOINTS, "wyoming": {"down": down}}, tmp_path / "e.json")
    out = capsys.readouterr().out
    assert "wyoming         DOWN: the voice bridges could not start on ports 10310/10210" in out
    assert "Address already in use" in out
    assert "Settings → Repairs" in out


def test_running_bridges_are_listed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    wyoming = {"stt": "tcp://127.0.0.1:10311", "tts": "tcp://127.0.0.1:10211"}
    _run_demo().print_summary({**ENDPOINTS, "wyoming": wyoming}, tmp_path / "e.json")
    out = capsys.readouterr().out
    assert "wyoming stt     tcp://127.0.0.1:10311" in out
    assert "DOWN" not in out
