"""Recovery inside a real Home Assistant against the simulated cluster (real HTTP, real SSH).

Wedge reports arrive as bus events like the gateway and the Wyoming bridge send them; the
integration probes, restarts over SSH, fires its events, raises and clears the repair issue
and keeps its entities and persisted budget in step.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
import voluptuous as vol
from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.spark_control.const import (
    CONF_DEEP_CHECK_INTERVAL,
    CONF_PROBE_TIMEOUT,
    CONF_VOICE_BRIDGES,
    DOMAIN,
    EVENT_RESTART_FAILED,
    EVENT_RESTART_SUPPRESSED,
    EVENT_SERVICE_RECOVERED,
    EVENT_SERVICE_RESTARTED,
    EVENT_WEDGE_DETECTED,
    EVENT_WEDGE_REPORT,
)
from custom_components.spark_control.recovery import SparkRecovery, async_remove_recovery_store
from tests.integration.recovery.ha.conftest import ENTRY_ID
from tests.sim import SimCluster

WEDGED = "binary_sensor.lab_parakeet_asr_wedged"
WEDGES = "sensor.lab_parakeet_asr_wedges"
RESTARTS = "sensor.lab_parakeet_asr_automatic_restarts_in_window"
ISSUE_ID = f"restart_suppressed_{ENTRY_ID}_parakeet"
STORAGE_KEY = f"{DOMAIN}.recovery.{ENTRY_ID}"
RESTART_PARAKEET = "docker restart parakeet-asr"


def _restarts(sim: SimCluster) -> int:
    return sim.nodes[1].commands.count(RESTART_PARAKEET)


def _recovery(entry: MockConfigEntry) -> SparkRecovery:
    recovery = entry.runtime_data.recovery
    assert isinstance(recovery, SparkRecovery)
    return recovery


async def _report(hass: HomeAssistant, **data: Any) -> None:
    """Send a wedge report as the gateway does and wait until recovery is done with it."""
    hass.bus.async_fire(
        EVENT_WEDGE_REPORT,
        {"service": "parakeet", "error": "HTTP 500", "source": "gateway", **data},
    )
    await hass.async_block_till_done(wait_background_tasks=True)


async def _settled_deep_check(
    hass: HomeAssistant, sim: SimCluster, services: list[str]
) -> dict[str, Any]:
    """Run the action once the checked services' processes serve again (a restarted one
    boots for a moment first, as the real containers do)."""
    for name in services:
        await getattr(sim, name).wait_serving()
    response = await hass.services.async_call(
        DOMAIN,
        "run_deep_check",
        {"cluster": ENTRY_ID, "service": services},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    return dict(response)


async def test_single_wedge_one_restart_and_recovered(
    hass: HomeAssistant, sim: SimCluster, loaded_entry: MockConfigEntry
) -> None:
    detected = async_capture_events(hass, EVENT_WEDGE_DETECTED)
    restarted = async_capture_events(hass, EVENT_SERVICE_RESTARTED)
    recovered = async_capture_events(hass, EVENT_SERVICE_RECOVERED)
    changes = async_capture_events(hass, EVENT_STATE_CHANGED)
    assert hass.states.get(WEDGED).state == "off"
    assert hass.states.get(WEDGES).state == "0"  # "never", not unknown

    sim.faults.wedge("parakeet")
    await _report(hass)

    assert _restarts(sim) == 1
    assert len(detected) == len(restarted) == len(recovered) == 1
    assert detected[0].data["entry_id"] == ENTRY_ID
    assert detected[0].data["cluster"] == "Lab"
    assert detected[0].data["source"] == "gateway"
    assert detected[0].data["reported_error"] == "HTTP 500"
    assert "CUBLAS_STATUS_EXECUTION_FAILED" in detected[0].data["error"]
    assert restarted[0].data["attempt"] == 1
    assert restarted[0].data["budget_left"] == 2
    assert restarted[0].data["reason"] == detected[0].data["error"]
    assert recovered[0].data["downtime"] > 0
    # The problem sensor went on while wedged and is off again.
    wedged_states = [
        event.data["new_state"].state for event in changes if event.data["entity_id"] == WEDGED
    ]
    assert wedged_states[0] == "on"
    assert wedged_states[-1] == "off"
    assert hass.states.get(WEDGES).state == "1"
    assert hass.states.get(RESTARTS).state == "1"
    assert ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_ID) is None


async def test_wedge_storm_suppresses_with_event_and_repair_issue(
    hass: HomeAssistant, sim: SimCluster, loaded_entry: MockConfigEntry
) -> None:
    suppressed = async_capture_events(hass, EVENT_RESTART_SUPPRESSED)
    recovered = async_capture_events(hass, EVENT_SERVICE_RECOVERED)
    for _ in range(4):
        sim.faults.wedge("parakeet")  # wedges again after every restart
        await _report(hass, source="wyoming")

    assert _restarts(sim) == 3
    assert len(recovered) == 3
    assert len(suppressed) == 1
    assert suppressed[0].data["restarts_in_window"] == 3
    assert suppressed[0].data["window_minutes"] == 30
    issue = ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_ID)
    assert issue is not None
    assert issue.translation_key == "restart_suppressed"
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["limit"] == "3"
    assert issue.translation_placeholders["window"] == "30"
    state = hass.states.get(WEDGED)
    assert state.state == "on"
    assert state.attributes["restart_suppressed"] is True
    assert hass.states.get(RESTARTS).state == "3"

    # A manual restart is always allowed; the on-demand check then clears everything.
    await hass.services.async_call(
        DOMAIN, "restart_service", {"cluster": ENTRY_ID, "service": "parakeet"}, blocking=True
    )
    assert _restarts(sim) == 4
    response = await _settled_deep_check(hass, sim, ["parakeet"])
    assert response["services"]["parakeet"]["health"] == "healthy"
    assert response["services"]["parakeet"]["restarts"] == 0
    assert len(recovered) == 4
    assert ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_ID) is None
    assert hass.states.get(WEDGED).state == "off"


async def test_ssh_dropped_during_restart_fires_an_error_event(
    hass: HomeAssistant, sim: SimCluster, loaded_entry: MockConfigEntry
) -> None:
    failed = async_capture_events(hass, EVENT_RESTART_FAILED)
    sim.faults.wedge("parakeet")
    sim.faults.drop_ssh_mid_command(True)

    await _report(hass)

    assert len(failed) == 1
    assert failed[0].data["service"] == "parakeet"
    assert failed[0].data["error"]
    assert hass.states.get(WEDGED).state == "on"
    sim.faults.drop_ssh_mid_command(False)
    response = await _settled_deep_check(hass, sim, ["parakeet"])
    assert response["services"]["parakeet"]["health"] == "healthy"
    assert hass.states.get(WEDGED).state == "off"


async def test_concurrent_reports_start_one_probe(
    hass: HomeAssistant, sim: SimCluster, loaded_entry: MockConfigEntry
) -> None:
    restarted = async_capture_events(hass, EVENT_SERVICE_RESTARTED)
    sim.faults.wedge("parakeet")
    for source in ("gateway", "wyoming", "gateway", "wyoming", "gateway"):
        hass.bus.async_fire(
            EVENT_WEDGE_REPORT, {"service": "parakeet", "error": "500", "source": source}
        )
    await hass.async_block_till_done(wait_background_tasks=True)

    assert _recovery(loaded_entry).manager.probes_started == 1
    assert len(restarted) == 1
    assert _restarts(sim) == 1


async def test_budget_survives_a_restart_of_home_assistant(
    hass: HomeAssistant,
    sim: SimCluster,
    config_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    now = time.time()
    hass_storage[STORAGE_KEY] = {
        "version": 1,
        "minor_version": 1,
        "key": STORAGE_KEY,
        "data": {
            "budget": {"version": 1, "restarts": {"parakeet": [now - 900, now - 600, now - 60]}},
            "last_wedge": {"parakeet": now - 60},
        },
    }
    suppressed = async_capture_events(hass, EVENT_RESTART_SUPPRESSED)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()

    assert hass.states.get(RESTARTS).state == "3"
    # Saved before wedges were counted: the last wedge time says there was at least one.
    assert hass.states.get(WEDGES).state == "1"
    last_wedge_at = _recovery(config_entry).state("parakeet").last_wedge_at
    assert last_wedge_at is not None
    assert last_wedge_at == now - 60  # the saved time itself, not one stamped at the start

    sim.faults.wedge("parakeet")
    await _report(hass)
    assert _restarts(sim) == 0
    assert len(suppressed) == 1
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()


async def test_restart_count_is_saved_and_restored(
    hass: HomeAssistant,
    sim: SimCluster,
    loaded_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    sim.faults.wedge("parakeet")
    await _report(hass)
    assert _restarts(sim) == 1
    saved = hass_storage[STORAGE_KEY]["data"]
    assert len(saved["budget"]["restarts"]["parakeet"]) == 1
    assert saved["wedges"] == {"parakeet": 1}

    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(RESTARTS).state == "1"
    assert hass.states.get(WEDGES).state == "1"
    assert hass.states.get("sensor.lab_magpie_tts_wedges").state == "0"
    assert _recovery(loaded_entry).manager.budget.remaining("parakeet") == 2


async def test_malformed_and_foreign_reports_are_ignored(
    hass: HomeAssistant,
    sim: SimCluster,
    loaded_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim.faults.wedge("parakeet")
    hass.bus.async_fire(EVENT_WEDGE_REPORT, {"service": "toaster", "error": "x"})
    hass.bus.async_fire(EVENT_WEDGE_REPORT, {"error": "no service"})
    hass.bus.async_fire(EVENT_WEDGE_REPORT, {"service": "parakeet", "entry_id": "another-cluster"})
    await hass.async_block_till_done(wait_background_tasks=True)

    assert _recovery(loaded_entry).manager.probes_started == 0
    assert _restarts(sim) == 0
    assert caplog.text.count("Ignoring a malformed wedge report") == 2

    # Addressed to this entry explicitly, it is handled.
    await _report(hass, entry_id=ENTRY_ID)
    assert _restarts(sim) == 1


async def test_run_deep_check_action_response_and_bad_input(
    hass: HomeAssistant, sim: SimCluster, loaded_entry: MockConfigEntry
) -> None:
    response = await _settled_deep_check(hass, sim, ["vllm", "parakeet", "magpie"])
    assert response["cluster"] == "Lab"
    assert {name: r["health"] for name, r in response["services"].items()} == {
        "vllm": "healthy",
        "parakeet": "healthy",
        "magpie": "healthy",
    }
    assert "health check" in response["services"]["parakeet"]["detail"].lower()

    with pytest.raises(vol.Invalid):
        await hass.services.async_call(
            DOMAIN,
            "run_deep_check",
            {"cluster": ENTRY_ID, "service": ["toaster"]},
            blocking=True,
            return_response=True,
        )
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "run_deep_check",
            {"cluster": "no-such-entry"},
            blocking=True,
            return_response=True,
        )
    assert err.value.translation_key == "invalid_cluster"


@pytest.mark.parametrize(
    "entry_options",
    [{CONF_VOICE_BRIDGES: False, CONF_DEEP_CHECK_INTERVAL: 1, CONF_PROBE_TIMEOUT: 30}],
)
async def test_periodic_deep_check_finds_a_silent_wedge(
    hass: HomeAssistant, sim: SimCluster, loaded_entry: MockConfigEntry
) -> None:
    detected = async_capture_events(hass, EVENT_WEDGE_DETECTED)
    sim.faults.wedge("magpie")  # nobody reports it: only the timer can find it

    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=1, seconds=1))
    await hass.async_block_till_done(wait_background_tasks=True)

    assert [event.data["service"] for event in detected] == ["magpie"]
    assert detected[0].data["source"] == "periodic"
    assert sim.nodes[1].commands.count("docker restart magpie-tts") == 1
    assert hass.states.get("binary_sensor.lab_magpie_tts_wedged").state == "off"


async def test_diagnostics_view_of_recovery(
    hass: HomeAssistant, sim: SimCluster, loaded_entry: MockConfigEntry
) -> None:
    sim.faults.wedge("parakeet")
    await _report(hass)
    diagnostics = _recovery(loaded_entry).as_diagnostics()
    assert diagnostics["restart_limit"] == 3
    assert diagnostics["restart_window_minutes"] == 30
    parakeet = diagnostics["services"]["parakeet"]
    assert parakeet["wedged"] is False
    assert parakeet["restarts_in_window"] == 1
    assert parakeet["checks"] == 2  # the probe that found the wedge, the one after the restart
    assert parakeet["last_result"]["health"] == "healthy"
    assert diagnostics["services"]["magpie"]["last_result"] is None


async def test_follow_up_check_notices_a_manual_restart(
    hass: HomeAssistant,
    sim: SimCluster,
    config_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    now = time.time()
    hass_storage[STORAGE_KEY] = {
        "version": 1,
        "minor_version": 1,
        "key": STORAGE_KEY,
        "data": {"budget": {"version": 1, "restarts": {"parakeet": [now - 120] * 3}}},
    }
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    detected = async_capture_events(hass, EVENT_WEDGE_DETECTED)
    suppressed = async_capture_events(hass, EVENT_RESTART_SUPPRESSED)
    recovered = async_capture_events(hass, EVENT_SERVICE_RECOVERED)

    sim.faults.wedge("parakeet")
    await _report(hass)
    await _report(hass, source="wyoming")  # the same episode: no second notification
    assert (len(detected), len(suppressed)) == (1, 1)
    assert ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_ID) is not None

    # The user restarts it by hand; nobody runs a check, the follow-up timer does.
    await hass.services.async_call(
        DOMAIN, "restart_service", {"cluster": ENTRY_ID, "service": "parakeet"}, blocking=True
    )
    await sim.parakeet.wait_serving()
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=1, seconds=1))
    await hass.async_block_till_done(wait_background_tasks=True)

    assert len(recovered) == 1
    assert recovered[0].data["source"] == "follow_up"
    assert ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_ID) is None
    assert hass.states.get(WEDGED).state == "off"
    assert _restarts(sim) == 1  # only the manual one
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()


async def test_recovery_store_can_be_removed(
    hass: HomeAssistant,
    sim: SimCluster,
    loaded_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    sim.faults.wedge("parakeet")
    await _report(hass)
    assert STORAGE_KEY in hass_storage
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    await async_remove_recovery_store(hass, loaded_entry.entry_id)
    assert STORAGE_KEY not in hass_storage


async def test_the_retired_last_wedge_sensor_is_removed(
    hass: HomeAssistant, sim: SimCluster, config_entry: MockConfigEntry
) -> None:
    """The "Last wedge" timestamp sensor (which read "unknown" until a first wedge) of an
    earlier version leaves the entity registry; the Wedges count stands in for it."""
    config_entry.add_to_hass(hass)
    registry = er.async_get(hass)
    old = registry.async_get_or_create(
        "sensor",
        DOMAIN,
        f"{config_entry.unique_id}_parakeet_last_wedge",
        config_entry=config_entry,
        suggested_object_id="lab_parakeet_asr_last_wedge",
    )
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()

    assert registry.async_get(old.entity_id) is None
    assert hass.states.get(old.entity_id) is None
    assert hass.states.get(WEDGES).state == "0"
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()
