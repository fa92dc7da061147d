"""The logbook (the connectivity log) describes every swap, recovery and health event in words,
and files the recovery lines under the service's Wedges sensor."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.components.recorder import Recorder
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry
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
    EVENT_VLLM_EXITED,
    EVENT_WEDGE_DETECTED,
    EVENT_WEDGE_REPORT,
)
from custom_components.spark_control.logbook import async_describe
from tests.ha_entry import logbook_of
from tests.sim import SimCluster

WEDGED = "binary_sensor.lab_parakeet_asr_wedged"
WEDGES = "sensor.lab_parakeet_asr_wedges"


@pytest.fixture
def mock_recorder_before_hass(async_setup_recorder_instance: Any) -> None:
    """The recorder must be prepared before the `hass` fixture starts."""


BASE = {"service": "parakeet", "cluster": "Lab", "entry_id": "e1"}
EVENTS: list[tuple[str, dict[str, Any], str]] = [
    (
        EVENT_WEDGE_DETECTED,
        {**BASE, "error": "transcription answered 500 (CUDA error)", "source": "gateway"},
        "is wedged: transcription answered 500 (CUDA error) (reported by the add-on gateway)",
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
    # A start or restart of vLLM runs through the swap's launch and says so.
    (
        EVENT_SWAP_STARTED,
        {"cluster": "Lab", "model": "qwen36", "starting": True},
        "is starting with qwen36",
    ),
    (
        EVENT_SWAP_FINISHED,
        {"cluster": "Lab", "model": "qwen36", "duration": 61.04, "starting": True},
        "started with qwen36 (took 61.0 s)",
    ),
    (
        EVENT_SWAP_FAILED,
        {"cluster": "Lab", "model": "qwen36", "duration": 3.0, "reason": "x", "starting": True},
        "failed to start with qwen36 after 3.0 s: x",
    ),
    (
        EVENT_SWAP_FELL_BACK,
        {"cluster": "Lab", "model": "gemma4", "fallback_model": "qwen36", "reason": "crashed"},
        "serves qwen36 again after the swap to gemma4 failed: crashed",
    ),
    (
        EVENT_WEDGE_DETECTED,
        {
            "service": "vllm",
            "cluster": "Lab",
            "error": "engine died: EngineCore encountered a fatal error.",
            "source": "container_log",
        },
        "is wedged: engine died: EngineCore encountered a fatal error. (reported by vLLM's log)",
    ),
    # vLLM's server gone while serving (vllm_exit.py), relaunched or, with the option off, not.
    (
        EVENT_VLLM_EXITED,
        {"service": "vllm", "cluster": "Lab", "model": "qwen36", "relaunch": True},
        "exited on its own while serving qwen36 (the node may have run out of memory); "
        "relaunching it",
    ),
    (
        EVENT_VLLM_EXITED,
        {"service": "vllm", "cluster": "Lab", "model": None, "relaunch": False},
        "exited on its own while serving a model outside the catalog (the node may have run out "
        "of memory); not relaunched, as automatic relaunch is off in the options",
    ),
    (
        EVENT_WEDGE_DETECTED,
        {
            "service": "vllm",
            "cluster": "Lab",
            "error": "vLLM's server exited while serving, with nothing in its log",
            "source": "server_exited",
        },
        "is wedged: vLLM's server exited while serving, with nothing in its log "
        "(reported by the exit watch)",
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


HEALTH = {"service": "magpie", "source": "open-webui", "ms": 120, "error": "HTTP 503"}


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (
            {"ok": True, "source": "open-webui", "ms": 120},
            "was reported working by open-webui in 120 ms",
        ),
        ({"ok": True, "source": "open-webui"}, "was reported working by open-webui"),
        ({"ok": True, "ms": 120}, "was reported working in 120 ms"),
        ({"ok": True, "ms": True}, "was reported working"),  # a flag is no latency
        ({"ok": False, **HEALTH}, "was reported failing by open-webui in 120 ms: HTTP 503"),
        (
            {"ok": False, "source": "open-webui"},
            "was reported failing by open-webui: unknown error",
        ),
        ({"ok": False, "ms": 7.5, "error": "HTTP 503"}, "was reported failing in 7.5 ms: HTTP 503"),
        ({"ok": False}, "was reported failing: unknown error"),
    ],
)
async def test_each_health_report_is_one_whole_sentence(
    hass: HomeAssistant, data: dict[str, Any], line: str
) -> None:
    """Whichever optional fields a client sends, the line is one sentence of the
    translations (none is pieced together from fragments)."""
    assert await async_setup_component(hass, DOMAIN, {})
    assert async_describe(hass, EVENT_HEALTH_REPORT, {"service": "magpie", **data}) == line


@pytest.mark.parametrize(
    ("cause", "detail", "reason"),
    [
        ("timeout", "900", "no model was ready after 900 s"),
        ("crashed", "RuntimeError: CUDA error", "vLLM crashed: RuntimeError: CUDA error"),
        ("crashed_early", "", "vLLM crashed before its startup completed"),
        ("exited", "", "the vLLM container exited before its startup completed"),
        (
            "server_exited",
            "",
            "vLLM stopped before its startup completed without logging an error (the node may "
            "have run out of memory)",
        ),
        # SSH and HTTP failures in words, naming only the node, the seconds, the URL or the
        # tool's own last line; any other error not in the library's English.
        ("ssh_unreachable", "spark-2", "spark-2 could not be reached over SSH"),
        (
            "ssh_key_rejected",
            "spark-2",
            "spark-2 refused Spark Control's SSH key (re-authenticate the cluster)",
        ),
        (
            "host_key_changed",
            "spark-2",
            "the SSH host key of spark-2 has changed (see the repair issue)",
        ),
        ("command_timeout", "120", "a command on the head node did not finish within 120 s"),
        (
            "command_failed",
            "Error: no such container",
            "a command on the head node failed: Error: no such container",
        ),
        (
            "http_timeout",
            "http://10.0.0.2:8000/health",
            "vLLM did not answer in time at http://10.0.0.2:8000/health",
        ),
        (
            "http_unreachable",
            "http://10.0.0.2:8000/health",
            "vLLM could not be reached at http://10.0.0.2:8000/health",
        ),
        (
            "error",
            "No pinned host key for spark-2; validate the cluster first",
            "an unexpected error (the Home Assistant log has its details)",
        ),
    ],
)
async def test_a_failed_swap_says_why_in_words(
    hass: HomeAssistant, cause: str, detail: str, reason: str
) -> None:
    """The event's cause and detail make the reason (its English `reason` is for automations)."""
    assert await async_setup_component(hass, DOMAIN, {})
    data = {"model": "gemma4", "duration": 3, "reason": "x", "cause": cause, "detail": detail}
    assert async_describe(hass, EVENT_SWAP_FAILED, data) == (
        f"failed to load gemma4 after 3.0 s: {reason}"
    )


async def test_a_language_without_our_translations_reads_english(hass: HomeAssistant) -> None:
    """HA set to German (no de.json here): HA's English fallback, never a raw key."""
    hass.config.language = "de"
    assert await async_setup_component(hass, DOMAIN, {})
    data = {"service": "vllm", "error": "x"}
    assert async_describe(hass, EVENT_WEDGE_DETECTED, data) == "is wedged: x"


async def test_a_wedge_without_source_or_error_still_reads(hass: HomeAssistant) -> None:
    assert await async_setup_component(hass, DOMAIN, {})
    for source in ({}, {"source": "unknown"}):
        data = {"service": "vllm", **source}
        assert async_describe(hass, EVENT_WEDGE_DETECTED, data) == "is wedged: unknown error"
    data = {"service": "vllm", "error": "x", "source": "vllm_probe"}
    assert async_describe(hass, EVENT_WEDGE_DETECTED, data) == (
        "is wedged: x (reported by the vLLM probe)"
    )
    # The recovery's own checks are named in words; a client's own name stays as it is.
    for source, named in [
        ("periodic", "the periodic deep check"),
        ("manual", "a deep check run by hand"),
        ("wyoming", "a voice bridge"),
        ("open-webui", "open-webui"),
    ]:
        data = {"service": "parakeet", "error": "x", "source": source}
        assert async_describe(hass, EVENT_WEDGE_DETECTED, data) == (
            f"is wedged: x (reported by {named})"
        )


async def test_recovery_lines_are_filed_under_the_wedged_sensor(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    sim: SimCluster,
    loaded_entry: MockConfigEntry,
) -> None:
    """A wedge, its automatic restart and the recovery appear in the logbook of the service's
    Wedged sensor, between its own problem/cleared lines, and on no other service's; the
    Wedges count read 0 before (never, not unknown)."""
    assert await async_setup_component(hass, "logbook", {})
    start = dt_util.utcnow()
    assert hass.states.get(WEDGES).state == "0"

    sim.faults.wedge("parakeet")
    hass.bus.async_fire(
        EVENT_WEDGE_REPORT, {"service": "parakeet", "error": "HTTP 500", "source": "gateway"}
    )
    await hass.async_block_till_done(wait_background_tasks=True)

    assert hass.states.get(WEDGES).state == "1"
    entries = await logbook_of(hass, hass_ws_client, start, WEDGED)
    assert {entry["entity_id"] for entry in entries} == {WEDGED}
    ours = [entry["message"] for entry in entries if entry.get("domain") == DOMAIN]
    assert len(ours) == 3
    assert ours[0].startswith("is wedged: ")
    assert ours[0].endswith("(reported by the add-on gateway)")
    assert ours[1] == "was restarted automatically (attempt 1, 2 restart(s) left in the window)"
    assert ours[2].startswith("recovered after ")
    # The problem sensor's own state changes frame them.
    states = [entry["state"] for entry in entries if "state" in entry]
    assert states == ["on", "off"]
    magpie = "binary_sensor.lab_magpie_tts_wedged"
    assert await logbook_of(hass, hass_ws_client, start, magpie) == []
