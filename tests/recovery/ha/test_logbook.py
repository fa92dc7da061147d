"""The logbook (the connectivity log) describes every swap, recovery and health event in words."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.components.recorder import Recorder
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.spark_control.const import (
    DOMAIN,
    EVENT_HEALTH_REPORT,
    EVENT_RESTART_FAILED,
    EVENT_RESTART_SUPPRESSED,
    EVENT_SERVICE_RECOVERED,
    EVENT_SERVICE_RESTARTED,
    EVENT_SWAP_FAILED,
    EVENT_SWAP_FELL_BACK,
    EVENT_SWAP_FINISHED,
    EVENT_SWAP_STARTED,
    EVENT_WEDGE_DETECTED,
)


@pytest.fixture
def mock_recorder_before_hass(async_setup_recorder_instance: Any) -> None:
    """The recorder must be prepared before the `hass` fixture starts."""


BASE = {"service": "parakeet", "cluster": "Lab", "entry_id": "e1"}
EVENTS: list[tuple[str, dict[str, Any], str]] = [
    (
        EVENT_WEDGE_DETECTED,
        {**BASE, "error": "transcription answered 500 (CUDA error)", "source": "gateway"},
        "is wedged: transcription answered 500 (CUDA error) (reported by gateway)",
    ),
    (
        EVENT_SERVICE_RESTARTED,
        {**BASE, "attempt": 2, "budget_left": 1, "reason": "x"},
        "was restarted automatically (attempt 2, 1 restart(s) left in the window)",
    ),
    (
        EVENT_RESTART_SUPPRESSED,
        {**BASE, "restarts_in_window": 3, "window_minutes": 30, "error": "x"},
        "is wedged but was not restarted: 3 automatic restarts already in the last 30 minutes;"
        " restart it manually",
    ),
    (
        EVENT_RESTART_FAILED,
        {**BASE, "error": "Cannot connect to 10.0.0.2"},
        "could not be restarted: Cannot connect to 10.0.0.2",
    ),
    (
        EVENT_SERVICE_RECOVERED,
        {**BASE, "downtime": 4.26, "restarts": 1},
        "recovered after 4.3 s of downtime",
    ),
    (
        EVENT_HEALTH_REPORT,
        {"service": "magpie", "ok": False, "source": "open-webui", "error": "timeout", "ms": 5000},
        "was reported failing by open-webui in 5000 ms: timeout",
    ),
    (
        EVENT_HEALTH_REPORT,
        {"service": "vllm", "ok": True, "source": "open-webui", "ms": 120},
        "was reported working by open-webui in 120 ms",
    ),
    (
        EVENT_SWAP_STARTED,
        {"cluster": "Lab", "model": "gemma4", "repo_id": "google/gemma-4-27b-it"},
        "started loading gemma4",
    ),
    (
        EVENT_SWAP_FINISHED,
        {"cluster": "Lab", "model": "gemma4", "duration": 92.345},
        "now serves gemma4 (swap took 92.3 s)",
    ),
    (
        EVENT_SWAP_FAILED,
        {"cluster": "Lab", "model": "gemma4", "duration": 12.0, "reason": "container exited"},
        "failed to load gemma4 after 12.0 s: container exited",
    ),
    (
        EVENT_SWAP_FELL_BACK,
        {"cluster": "Lab", "model": "gemma4", "fallback_model": "qwen36", "reason": "crashed"},
        "serves qwen36 again after the swap to gemma4 failed: crashed",
    ),
]


async def test_logbook_entries_for_each_event(
    recorder_mock: Recorder, hass: HomeAssistant, hass_ws_client: WebSocketGenerator
) -> None:
    assert await async_setup_component(hass, "logbook", {})
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    start = dt_util.utcnow()

    for event_type, data, _ in EVENTS:
        hass.bus.async_fire(event_type, data)
    await hass.async_block_till_done()
    await async_wait_recording_done(hass)

    client = await hass_ws_client()
    await client.send_json({"id": 1, "type": "logbook/get_events", "start_time": start.isoformat()})
    response = await client.receive_json()
    assert response["success"]
    entries = [(e["name"], e["message"], e["domain"]) for e in response["result"]]
    assert entries == [("Lab Parakeet", message, DOMAIN) for _, _, message in EVENTS[:5]] + [
        ("Magpie", EVENTS[5][2], DOMAIN),
        ("vLLM", EVENTS[6][2], DOMAIN),
    ] + [("Lab vLLM", message, DOMAIN) for _, _, message in EVENTS[7:]]
