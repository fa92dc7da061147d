"""Model swaps end to end: select and action, events, live progress, failures, serialization."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from homeassistant.components.persistent_notification import (
    _async_get_or_create_notifications,
)
from homeassistant.components.select import ATTR_OPTION, SERVICE_SELECT_OPTION
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import (
    CALLBACK_TYPE,
    Event,
    EventStateChangedData,
    HomeAssistant,
    State,
    callback,
)
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.event import async_track_state_change_event
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    mock_restore_cache,
)

from custom_components.spark_control.const import (
    CONF_SWAP_FALLBACK,
    CONF_SWAP_TIMEOUT,
    CONF_VOICE_BRIDGES,
    DOMAIN,
    EVENT_SWAP_FAILED,
    EVENT_SWAP_FELL_BACK,
    EVENT_SWAP_FINISHED,
    EVENT_SWAP_STARTED,
)
from custom_components.spark_control.logbook import async_describe
from tests.paths import REPO
from tests.sim import SimCluster

SELECT = "select.lab_vllm_model"
SWAP_SENSOR = "sensor.lab_vllm_swap_status"


async def _swap_done(hass: HomeAssistant) -> None:
    """Wait for the background swap (an entry background task) to end, without polling."""
    async with asyncio.timeout(20):
        await hass.async_block_till_done(wait_background_tasks=True)


def _record_states(hass: HomeAssistant, entity_id: str) -> tuple[list[str], CALLBACK_TYPE]:
    """Every state the entity takes from now on, and the function that stops recording."""
    states: list[str] = []

    @callback
    def record(event: Event[EventStateChangedData]) -> None:
        if (state := event.data["new_state"]) is not None:
            states.append(state.state)

    return states, async_track_state_change_event(hass, entity_id, record)


def _record_swap_sensor(hass: HomeAssistant) -> tuple[list[tuple[str, bool]], CALLBACK_TYPE]:
    """Every (phase, `running` attribute) the swap sensor shows from now on, and the function
    that stops recording."""
    shown: list[tuple[str, bool]] = []

    @callback
    def record(event: Event[EventStateChangedData]) -> None:
        if (state := event.data["new_state"]) is not None:
            shown.append((state.state, state.attributes["running"]))

    return shown, async_track_state_change_event(hass, SWAP_SENSOR, record)


async def test_swap_action_waits_and_reports(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """`swap_model` with wait: stop, launch detached with the catalog flags, follow the log,
    report ready; the select shows the new model when the action returns."""
    started = async_capture_events(hass, EVENT_SWAP_STARTED)
    finished = async_capture_events(hass, EVENT_SWAP_FINISHED)
    shown, unsub = _record_swap_sensor(hass)
    called_at = time.monotonic()
    response = await hass.services.async_call(
        DOMAIN,
        "swap_model",
        {"cluster": loaded_entry.entry_id, "model": "gemma4", "wait": True},
        blocking=True,
        return_response=True,
    )
    call_took = time.monotonic() - called_at
    await hass.async_block_till_done()  # the state written as the claim went
    unsub()
    assert response is not None
    assert response["model"] == "gemma4"
    assert response["status"] == "ready"
    # Seconds (rounded to the ms), within the call that waited for it: a bound load can't break.
    assert 0 < float(response["duration"]) <= call_took + 0.001  # type: ignore[arg-type]
    # The select shows the new model without waiting for the next poll.
    state = hass.states.get(SELECT)
    assert state is not None
    assert state.state == "Gemma 4 27B Instruct"

    # Running from the claim (before the first phase report: still idle) until the swap's
    # events are out (after ready, once vLLM's model list confirmed the load).
    assert shown[0] == ("idle", True)
    assert shown[1] == ("stopping", True)
    assert shown[-2:] == [("ready", True), ("ready", False)]
    assert {phase for phase, running in shown[:-1] if running} >= {"starting", "loading"}
    assert all(running for _phase, running in shown[:-1])
    sensor = hass.states.get(SWAP_SENSOR)
    assert sensor is not None
    assert sensor.attributes["target_model"] == "gemma4"
    assert sensor.attributes["target_name"] == "Gemma 4 27B Instruct"  # as the select says
    assert "Application startup complete." in sensor.attributes["last_log_line"]

    assert started[0].data["model"] == "gemma4"
    assert started[0].data["previous_models"] == ["RedHatAI/Qwen3.6-35B-A3B-NVFP4"]
    payload = finished[0].data
    assert payload["cluster"] == "Lab"
    assert payload["entry_id"] == loaded_entry.entry_id
    assert payload["model"] == "gemma4"
    repo_id = payload["repo_id"]
    assert payload["served_models"] == [repo_id]

    head = sim.nodes[0].commands
    assert any(command.endswith("./launch-cluster.sh stop") for command in head)
    launch = next(command for command in head if "vllm serve" in command)
    assert f"-d exec vllm serve {repo_id}" in launch
    assert "--max-model-len" in launch


async def test_select_starts_swap_and_refuses_a_second(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """Choosing a model starts a swap in the background; a second request names the first."""
    sim.faults.slow_start(1.0)
    finished = async_capture_events(hass, EVENT_SWAP_FINISHED)
    await hass.services.async_call(
        "select",
        SERVICE_SELECT_OPTION,
        {ATTR_ENTITY_ID: SELECT, ATTR_OPTION: "Qwen3-VL 30B-A3B Instruct (FP8)"},
        blocking=True,
    )
    with pytest.raises(HomeAssistantError) as error:
        await hass.services.async_call(
            DOMAIN,
            "swap_model",
            {"cluster": loaded_entry.entry_id, "model": "gemma4", "wait": True},
            blocking=True,
            return_response=True,
        )
    assert error.value.translation_key == "swap_in_progress"
    # Named as the select names it, in the sentence HA shows.
    assert error.value.translation_placeholders == {"model": "Qwen3-VL 30B-A3B Instruct (FP8)"}
    assert str(error.value) == (
        "A swap to Qwen3-VL 30B-A3B Instruct (FP8) is already in progress; wait for it to finish"
    )
    # Restarting vLLM under a swap is refused the same way.
    with pytest.raises(HomeAssistantError) as error:
        await hass.services.async_call(
            DOMAIN,
            "restart_service",
            {"cluster": loaded_entry.entry_id, "service": "vllm"},
            blocking=True,
        )
    assert error.value.translation_key == "swap_in_progress"

    await _swap_done(hass)
    assert finished
    await hass.async_block_till_done()
    state = hass.states.get(SELECT)
    assert state is not None
    assert state.state == "Qwen3-VL 30B-A3B Instruct (FP8)"


async def test_swap_crash_during_load(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """A crash while loading fails the swap with the log tail, an event and a notification."""
    sim.faults.crash_on_load(True)
    failed = async_capture_events(hass, EVENT_SWAP_FAILED)
    with pytest.raises(HomeAssistantError) as error:
        await hass.services.async_call(
            DOMAIN,
            "swap_model",
            {"cluster": loaded_entry.entry_id, "model": "gemma4", "wait": True},
            blocking=True,
            return_response=True,
        )
    assert error.value.translation_key == "swap_failed"
    payload = failed[0].data
    # The user reads the cause in words; automations get the catalog key and the parts.
    assert str(error.value) == (
        f"The swap to Gemma 4 27B Instruct failed: vLLM crashed: {payload['detail']}"
    )
    assert payload["model"] == "gemma4"
    assert payload["reason"] == f"crashed: {payload['detail']}"
    assert payload["cause"] == "crashed"
    assert "RuntimeError" in payload["detail"]
    assert any("RuntimeError" in line for line in payload["last_lines"])
    sensor = hass.states.get(SWAP_SENSOR)
    assert sensor is not None
    assert sensor.state == "failed"
    assert "RuntimeError" in _notification_text(hass)
    # vLLM is down after the crash: the select shows no model (and can start one), the
    # health sensor is off.
    await loaded_entry.runtime_data.status.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get(SELECT).state == "unknown"  # type: ignore[union-attr]
    assert hass.states.get("binary_sensor.lab_vllm_connectivity").state == "off"  # type: ignore[union-attr]


def _notification_text(hass: HomeAssistant) -> str:
    notifications = _async_get_or_create_notifications(hass)
    return "\n".join(item["message"] for item in notifications.values())


def _notification_strings() -> dict[str, str]:
    """The notifications' texts as translations/en.json holds them (key -> text)."""
    strings = json.loads(
        (REPO / "custom_components" / DOMAIN / "translations" / "en.json").read_text()
    )
    return {key: value["message"] for key, value in strings["exceptions"].items()}


async def test_failed_swap_notification_is_translated_and_goes_after_a_good_swap(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """The failure's notification says it in the integration's translated text, names the
    model as the select shows it (not its catalog key), and is dismissed once a later swap of
    the same entry succeeds."""
    hass.config_entries.async_update_entry(
        loaded_entry, options={**loaded_entry.options, CONF_SWAP_FALLBACK: False}
    )
    sim.faults.crash_on_load(True)
    failed = async_capture_events(hass, EVENT_SWAP_FAILED)
    with pytest.raises(HomeAssistantError):
        await _swap_and_wait(hass, loaded_entry, "gemma4")
    strings = _notification_strings()
    notifications = _async_get_or_create_notifications(hass)
    notice = notifications[f"{DOMAIN}_{loaded_entry.entry_id}_swap_failed"]
    assert notice["title"] == strings["swap_failed_notification_title"]
    assert notice["message"] == strings["swap_failed_notification"].format(
        cluster="Lab",
        model="Gemma 4 27B Instruct",
        reason=f"vLLM crashed: {failed[0].data['detail']}",
        log_tail="\n".join(failed[0].data["last_lines"][-10:]),
    )
    assert "`gemma4`" not in notice["message"]

    await sim.faults.clear()
    await _swap_and_wait(hass, loaded_entry, "gemma4")
    assert f"{DOMAIN}_{loaded_entry.entry_id}_swap_failed" not in notifications


async def _swap_and_wait(hass: HomeAssistant, entry: MockConfigEntry, model: str) -> None:
    await hass.services.async_call(
        DOMAIN,
        "swap_model",
        {"cluster": entry.entry_id, "model": model, "wait": True},
        blocking=True,
    )


async def test_swap_timeout(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """A load that outlasts the swap timeout ends as failed with the reason."""
    # The option is stored in minutes; 0.05 keeps the test at three seconds.
    hass.config_entries.async_update_entry(
        loaded_entry, options={CONF_VOICE_BRIDGES: False, CONF_SWAP_TIMEOUT: 0.05}
    )
    await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    sim.faults.slow_start(30)
    failed = async_capture_events(hass, EVENT_SWAP_FAILED)
    with pytest.raises(HomeAssistantError) as error:
        await hass.services.async_call(
            DOMAIN,
            "swap_model",
            {"cluster": loaded_entry.entry_id, "model": "gemma4", "wait": True},
            blocking=True,
            return_response=True,
        )
    assert error.value.translation_key == "swap_failed"
    assert failed[0].data["reason"] == "timeout after 3 s"
    assert (failed[0].data["cause"], failed[0].data["detail"]) == ("timeout", "3")
    assert str(error.value).endswith("failed: no model was ready after 3 s")
    assert hass.states.get(SWAP_SENSOR).state == "failed"  # type: ignore[union-attr]
    await sim.faults.clear()


async def test_swap_action_without_wait(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    """Without `wait` the action answers at once and the swap finishes in the background."""
    finished = async_capture_events(hass, EVENT_SWAP_FINISHED)
    response = await hass.services.async_call(
        DOMAIN,
        "swap_model",
        {"cluster": loaded_entry.entry_id, "model": "qwen3-vl"},
        blocking=True,
        return_response=True,
    )
    assert response == {"model": "qwen3-vl", "status": "started"}
    await _swap_done(hass)
    assert finished
    await hass.async_block_till_done()
    assert hass.states.get(SELECT).state == "Qwen3-VL 30B-A3B Instruct (FP8)"  # type: ignore[union-attr]


async def test_select_shows_new_model_on_ready(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """The select shows the new model as soon as the swap reports "ready" (in the same step
    as the swap sensor), before the swap returns and fires its finished event; the poll that
    follows confirms it from vLLM's model list."""
    finished = async_capture_events(hass, EVENT_SWAP_FINISHED)
    select_when_ready: list[tuple[str, int]] = []

    @callback
    def on_ready(event: Event[EventStateChangedData]) -> None:
        state, before = event.data["new_state"], event.data["old_state"]
        if state is not None and state.state == "ready" and before and before.state != "ready":
            shown = hass.states.get(SELECT)
            assert shown is not None
            select_when_ready.append((shown.state, len(finished)))

    unsub = async_track_state_change_event(hass, SWAP_SENSOR, on_ready)
    await hass.services.async_call(
        "select",
        SERVICE_SELECT_OPTION,
        {ATTR_ENTITY_ID: SELECT, ATTR_OPTION: "Gemma 4 27B Instruct"},
    )
    await _swap_done(hass)
    assert finished
    unsub()
    assert select_when_ready == [("Gemma 4 27B Instruct", 0)]
    status = loaded_entry.runtime_data.status.data
    assert status.vllm is not None
    assert status.vllm.models == ["google/gemma-4-27b-it"]
    assert status.vllm.max_model_len is not None  # filled by the confirming poll
    assert hass.states.get(SELECT).state == "Gemma 4 27B Instruct"  # type: ignore[union-attr]


async def test_select_shows_the_target_throughout_a_swap(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """From the request to the end the select shows the model being loaded, never `unknown`,
    and the swap sensor's attributes carry the elapsed time in seconds."""
    sim.faults.slow_start(0.5)
    shown, unsub = _record_states(hass, SELECT)
    await hass.services.async_call(
        DOMAIN,
        "swap_model",
        {"cluster": loaded_entry.entry_id, "model": "gemma4", "wait": True},
        blocking=True,
        return_response=True,
    )
    await hass.async_block_till_done()
    unsub()
    assert shown
    assert set(shown) == {"Gemma 4 27B Instruct"}
    sensor = hass.states.get(SWAP_SENSOR)
    assert sensor is not None
    assert sensor.attributes["elapsed_seconds"] > 0.5


async def test_select_starts_a_model_while_vllm_is_stopped(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """With vLLM's container stopped the select shows no model but can still start one; it
    remembers the model served last (the gateway starts that one for `current`)."""
    await hass.services.async_call(
        DOMAIN,
        "stop_service",
        {"cluster": loaded_entry.entry_id, "service": "vllm"},
        blocking=True,
    )
    await hass.async_block_till_done()
    stopped = hass.states.get(SELECT)
    assert stopped is not None
    assert stopped.state == "unknown"
    assert stopped.attributes["catalog_key"] is None
    assert stopped.attributes["last_served_key"] == "qwen36"
    finished = async_capture_events(hass, EVENT_SWAP_FINISHED)
    await hass.services.async_call(
        "select",
        SERVICE_SELECT_OPTION,
        {ATTR_ENTITY_ID: SELECT, ATTR_OPTION: "Gemma 4 27B Instruct"},
        blocking=True,
    )
    await _swap_done(hass)
    assert finished
    await hass.async_block_till_done()
    started = hass.states.get(SELECT)
    assert started is not None
    assert started.state == "Gemma 4 27B Instruct"
    assert started.attributes["last_served_key"] == "gemma4"
    assert loaded_entry.runtime_data.status.data.vllm is not None
    assert loaded_entry.runtime_data.status.data.vllm.models == ["google/gemma-4-27b-it"]


async def test_select_remembers_the_last_served_model_across_restarts(
    hass: HomeAssistant, config_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """Home Assistant restarting while vLLM is stopped: the model served last comes back from
    the saved state."""
    await sim.world.docker.stop(sim.world.vllm.container)
    mock_restore_cache(hass, [State(SELECT, "unknown", {"last_served_key": "gemma4"})])
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    state = hass.states.get(SELECT)
    assert state is not None
    assert state.state == "unknown"
    assert state.attributes["last_served_key"] == "gemma4"
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()


async def test_failed_swap_falls_back_to_the_last_good_model(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """A load that runs out of memory fails the swap, then the model served before is loaded
    again under the same claim: a swap request meanwhile is refused naming it, the select
    shows it throughout, and a fell-back event, a notification and a logbook line say so."""
    sim.faults.oom_on_load("google/gemma-4-27b-it")
    failed = async_capture_events(hass, EVENT_SWAP_FAILED)
    fell_back = async_capture_events(hass, EVENT_SWAP_FELL_BACK)
    shown, unsub = _record_states(hass, SELECT)
    refusals: list[dict[str, str] | None] = []

    @callback
    def on_failed(_event: Event) -> None:
        # The claim is kept for the fallback: a request now is refused, naming it.
        try:
            loaded_entry.runtime_data.swap.ensure_idle()
        except HomeAssistantError as error:
            refusals.append(error.translation_placeholders)

    remove = hass.bus.async_listen(EVENT_SWAP_FAILED, on_failed)
    with pytest.raises(HomeAssistantError) as error:
        await hass.services.async_call(
            DOMAIN,
            "swap_model",
            {"cluster": loaded_entry.entry_id, "model": "gemma4", "wait": True},
            blocking=True,
            return_response=True,
        )
    remove()
    unsub()
    await hass.async_block_till_done()
    assert error.value.translation_key == "swap_failed"
    assert [event.data["model"] for event in failed] == ["gemma4"]
    assert "crashed" in failed[0].data["reason"]
    assert refusals == [{"model": "Qwen3.6 35B-A3B (NVFP4)"}]
    payload = fell_back[0].data
    assert payload["model"] == "gemma4"
    assert payload["fallback_model"] == "qwen36"
    assert payload["fallback_repo_id"] == "RedHatAI/Qwen3.6-35B-A3B-NVFP4"
    assert "crashed" in payload["reason"]
    assert payload["duration"] > 0
    launches = [c for c in sim.nodes[0].commands if "vllm serve" in c]
    assert "google/gemma-4-27b-it" in launches[-2]
    assert "RedHatAI/Qwen3.6-35B-A3B-NVFP4" in launches[-1]
    # Truthful throughout: the target, then the fallback, then what vLLM serves.
    assert shown[0] == "Gemma 4 27B Instruct"
    assert shown[-1] == "Qwen3.6 35B-A3B (NVFP4)"
    assert "unknown" not in shown
    assert loaded_entry.runtime_data.status.data.vllm is not None
    assert loaded_entry.runtime_data.status.data.vllm.models == ["RedHatAI/Qwen3.6-35B-A3B-NVFP4"]
    notifications = _async_get_or_create_notifications(hass)
    fell_back_id = f"{DOMAIN}_{loaded_entry.entry_id}_swap_fell_back"
    assert notifications[fell_back_id]["message"] == _notification_strings()[
        "swap_fell_back_notification"
    ].format(
        cluster="Lab",
        model="Gemma 4 27B Instruct",
        reason=f"vLLM crashed: {payload['detail']}",
        fallback_model="Qwen3.6 35B-A3B (NVFP4)",
    )
    # The logbook names both models as the select does, and the cause in words.
    assert async_describe(hass, EVENT_SWAP_FAILED, failed[0].data).startswith(
        "failed to load Gemma 4 27B Instruct after "
    )
    assert async_describe(hass, EVENT_SWAP_FELL_BACK, payload) == (
        "serves Qwen3.6 35B-A3B (NVFP4) again after the swap to Gemma 4 27B Instruct failed: "
        f"vLLM crashed: {payload['detail']}"
    )
    assert not loaded_entry.runtime_data.swap.running
    # Removing the entry takes its notifications along: nothing is left to act on.
    assert await hass.config_entries.async_remove(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert not [key for key in notifications if loaded_entry.entry_id in key]


async def test_no_fallback_when_switched_off(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """With the option off a failed swap leaves vLLM down and fires no fell-back event."""
    hass.config_entries.async_update_entry(
        loaded_entry, options={**loaded_entry.options, CONF_SWAP_FALLBACK: False}
    )
    sim.faults.oom_on_load("google/gemma-4-27b-it")
    fell_back = async_capture_events(hass, EVENT_SWAP_FELL_BACK)
    with pytest.raises(HomeAssistantError):
        await hass.services.async_call(
            DOMAIN,
            "swap_model",
            {"cluster": loaded_entry.entry_id, "model": "gemma4", "wait": True},
            blocking=True,
            return_response=True,
        )
    await hass.async_block_till_done()
    assert not fell_back
    assert sum("vllm serve" in c for c in sim.nodes[0].commands) == 1
    assert hass.states.get(SELECT).state == "unknown"  # type: ignore[union-attr]
