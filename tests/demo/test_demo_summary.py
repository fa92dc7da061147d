"""What `./scripts/demo` prints: it says when the Wyoming bridges are down, and why."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from tests.paths import REPO

ROOT = REPO


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


def test_operations_are_listed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    operations = {
        "add_model": {
            "where": "Settings → … → Add model",
            "repo_id": "Qwen/Qwen3-8B",
            "bytes": 16.4e9,
        },
        "download_progress": {"entity_id": "sensor.demo_cluster_vllm_model_download_progress"},
        "software_update": {
            "entity_id": "update.spark_1_spark_vllm_docker",
            "commits_behind": 3,
            "installed_version": "1a2b3c4",
            "latest_version": "5d6e7f8",
        },
        "speech_container_update": {
            "entity_id": "update.demo_cluster_parakeet_asr_speech_container",
            "installed_version": "Built by hand",
            "latest_version": "0123456789ab",
        },
    }
    wyoming = {"stt": "tcp://127.0.0.1:10311", "tts": "tcp://127.0.0.1:10211"}
    _run_demo().print_summary(
        {**ENDPOINTS, "wyoming": wyoming, "operations": operations}, tmp_path / "e.json"
    )
    out = capsys.readouterr().out
    assert "repo id Qwen/Qwen3-8B: its 16.4 GB are on no node yet" in out
    assert "sensor.demo_cluster_vllm_model_download_progress" in out
    assert "update.spark_1_spark_vllm_docker (spark-vllm-docker): 3 commits behind" in out
    assert "Built by hand → 0123456789ab" in out
