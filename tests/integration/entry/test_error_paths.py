"""Error paths of the HA glue against the simulator: bad stored data, SSH dropping under an
action or a poll, a key rejected in the background poll, controls during a swap, a swap that
fails in the background, and what removing an entry leaves behind."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from homeassistant.components.persistent_notification import (
    _async_get_or_create_notifications,
)
from homeassistant.components.repairs import DOMAIN as REPAIRS_DOMAIN
from homeassistant.components.repairs.issue_handler import RepairsFlowManager
from homeassistant.components.select import ATTR_OPTION, SERVICE_SELECT_OPTION
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_ENTITY_ID, SERVICE_TURN_OFF
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.spark_control.const import (
    CONF_REPO_PATH,
    CONF_RESTART_LIMIT,
    CONF_SWAP_FALLBACK,
    CONF_VOICE_BRIDGES,
    DOMAIN,
    EVENT_RESTART_SUPPRESSED,
    EVENT_SWAP_FAILED,
    EVENT_SWAP_FINISHED,
    EVENT_WEDGE_REPORT,
)
from custom_components.spark_control.service_control import async_service_action
from tests.ha_entry import async_node_hangs_up, async_wait_until
from tests.sim import SimCluster
from tests.sim_entry import node_strings

from .conftest import entry_data
from .test_config_flow import _services_input

SELECT = "select.lab_vllm_model"


def _swap_phase(hass: HomeAssistant) -> str:
    return hass.states.get("sensor.lab_vllm_swap_status").state  # type: ignore[union-attr]


def _gpu_temperatures(hass: HomeAssistant, entry: MockConfigEntry) -> list[str]:
    registry = er.async_get(hass)
    return [
        hass.states.get(item.entity_id).state  # type: ignore[union-attr]
        for item in er.async_entries_for_config_entry(registry, entry.entry_id)
        if item.unique_id.endswith("_gpu_temperature")
    ]


async def test_unsafe_stored_path_is_a_setup_error(
    hass: HomeAssistant, sim: SimCluster, client_key: tuple[str, str]
) -> None:
    """Entry data edited into something unsafe (a shell command in the repo path) stops the
    setup with an error before anything is sent to a node."""
    data = {**entry_data(sim, client_key), CONF_REPO_PATH: "~/spark; rm -rf /"}
    entry = MockConfigEntry(
        domain=DOMAIN, title="Lab", data=data, options={CONF_VOICE_BRIDGES: False}
    )
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert all(not node.commands for node in sim.nodes)


async def test_metrics_poll_with_everything_down(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """vLLM refused and every SSH command dropped: the slow poll fails as a whole (its
    entities unavailable) and recovers when the cluster is back."""
    metrics = loaded_entry.runtime_data.metrics
    await sim.faults.refuse("vllm")
    sim.faults.drop_ssh_mid_command()
    await metrics.async_refresh()
    await hass.async_block_till_done()
    assert not metrics.last_update_success
    assert _gpu_temperatures(hass, loaded_entry) == ["unavailable", "unavailable"]
    assert hass.states.get("switch.lab_vllm_running").state == "unavailable"  # type: ignore[union-attr]

    await sim.faults.clear()
    await metrics.async_refresh()
    await hass.async_block_till_done()
    assert metrics.last_update_success
    assert _gpu_temperatures(hass, loaded_entry) == ["38.0", "38.0"]


async def test_rejected_key_in_the_metrics_poll_leads_to_reauth(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """A node that stops accepting the key is noticed by the background poll (not only by an
    action): the entry is reloaded into the reauth flow."""
    sim.faults.reject_key(1)
    # The node dropped our kept connection; the next command reconnects.
    await async_node_hangs_up(loaded_entry, sim, 1)
    await loaded_entry.runtime_data.metrics.async_refresh()
    await hass.async_block_till_done()
    assert loaded_entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == ["reauth"]


async def test_dropped_ssh_under_actions_is_a_translated_error(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """SSH cut mid-command under a button, a switch and an action: each raises a translated
    HA error (nothing crashes), and the same controls work once SSH is back."""
    sim.faults.drop_ssh_mid_command()
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("button", "press", {ATTR_ENTITY_ID: "button.lab_parakeet_asr_restart"}),
        ("switch", SERVICE_TURN_OFF, {ATTR_ENTITY_ID: "switch.lab_magpie_tts_running"}),
        (DOMAIN, "stop_service", {"cluster": loaded_entry.entry_id, "service": "magpie"}),
    ]
    for domain, action, data in calls:
        with pytest.raises(HomeAssistantError) as error:
            await hass.services.async_call(domain, action, data, blocking=True)
        assert error.value.translation_domain == DOMAIN
        assert error.value.translation_key in ("cannot_connect", "command_failed")
    assert loaded_entry.state is ConfigEntryState.LOADED

    await sim.faults.clear()
    await hass.services.async_call(*calls[2], blocking=True)
    await hass.async_block_till_done()
    assert not sim.containers["magpie-tts"].running
    assert hass.states.get("switch.lab_magpie_tts_running").state == "off"  # type: ignore[union-attr]


async def test_vllm_controls_refused_during_a_swap(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """While a swap runs, restarting, stopping or switching vLLM (button, switch, action or
    automatic restart) is refused with an error naming the swap, and nothing is sent to the
    head node."""
    finished = async_capture_events(hass, EVENT_SWAP_FINISHED)
    sim.faults.slow_start(1.5)
    await hass.services.async_call(
        "select",
        SERVICE_SELECT_OPTION,
        {ATTR_ENTITY_ID: SELECT, ATTR_OPTION: "Gemma 4 27B Instruct"},
    )
    await asyncio.sleep(0)
    sent = len(sim.nodes[0].commands)
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("button", "press", {ATTR_ENTITY_ID: "button.lab_vllm_restart"}),
        ("switch", SERVICE_TURN_OFF, {ATTR_ENTITY_ID: "switch.lab_vllm_running"}),
        (DOMAIN, "stop_service", {"cluster": loaded_entry.entry_id, "service": "vllm"}),
    ]
    for domain, action, data in calls:
        with pytest.raises(HomeAssistantError) as error:
            await hass.services.async_call(domain, action, data, blocking=True)
        assert error.value.translation_key == "swap_in_progress"
        assert error.value.translation_placeholders == {"model": "Gemma 4 27B Instruct"}
    # The automatic restarts go through the same helper, so recovery cannot break it either.
    with pytest.raises(HomeAssistantError) as error:
        await async_service_action(loaded_entry, "vllm", "restart")
    assert error.value.translation_key == "swap_in_progress"
    assert not any(
        command.startswith(("docker restart", "docker stop"))
        for command in sim.nodes[0].commands[sent:]
    )
    await async_wait_until(hass, lambda: bool(finished))
    assert hass.states.get(SELECT).state == "Gemma 4 27B Instruct"  # type: ignore[union-attr]


async def test_background_swap_failure_from_the_select(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """A swap started from the select that crashes while loading ends as failed (event,
    sensor) without an unhandled error, and frees the cluster for the next swap."""
    failed = async_capture_events(hass, EVENT_SWAP_FAILED)
    sim.faults.crash_on_load(True)
    await hass.services.async_call(
        "select",
        SERVICE_SELECT_OPTION,
        {ATTR_ENTITY_ID: SELECT, ATTR_OPTION: "Gemma 4 27B Instruct"},
    )
    await async_wait_until(hass, lambda: bool(failed))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert failed[0].data["model"] == "gemma4"
    assert hass.states.get("sensor.lab_vllm_swap_status").state == "failed"  # type: ignore[union-attr]
    assert not loaded_entry.runtime_data.swap.running

    await sim.faults.clear()
    sim.faults.crash_on_load(False)
    response = await hass.services.async_call(
        DOMAIN,
        "swap_model",
        {"cluster": loaded_entry.entry_id, "model": "qwen36", "wait": True},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    assert response["status"] == "ready"


async def test_removal_deletes_the_entry_repair_issues(
    hass: HomeAssistant, config_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """Removing an entry drops its persisted repair issues: a changed host key and an
    exhausted restart budget do not outlive the cluster."""
    assert await async_setup_component(hass, REPAIRS_DOMAIN, {})
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Lab",
        unique_id=config_entry.unique_id,
        data=dict(config_entry.data),
        options={CONF_VOICE_BRIDGES: False, CONF_RESTART_LIMIT: 0},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    suppressed = async_capture_events(hass, EVENT_RESTART_SUPPRESSED)
    sim.faults.wedge("parakeet")
    hass.bus.async_fire(
        EVENT_WEDGE_REPORT, {"service": "parakeet", "error": "HTTP 500", "source": "gateway"}
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(suppressed) == 1
    # The second node presents a new host key: the next reconnect raises the other issue.
    sim.faults.change_host_key(1)
    await async_node_hangs_up(entry, sim, 1)
    await entry.runtime_data.metrics.async_refresh()
    await hass.async_block_till_done()
    issues = ir.async_get(hass)
    node = node_strings(sim)[1]
    ids = [
        f"restart_suppressed_{entry.entry_id}_parakeet",
        f"host_key_changed_{entry.entry_id}_{node}",
    ]
    assert all(issues.async_get_issue(DOMAIN, issue_id) is not None for issue_id in ids)

    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert all(issues.async_get_issue(DOMAIN, issue_id) is None for issue_id in ids)


def _reconfigure_input(sim: SimCluster, nodes: list[str]) -> dict[str, Any]:
    return {
        "nodes": ", ".join(nodes),
        "ssh_port": 22,
        "repo_path": "~/spark-vllm-docker",
        **_services_input(sim),
    }


async def test_reconfigure_refuses_a_changed_host_key(
    hass: HomeAssistant, config_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """Reconfiguring while a node presents a new host key is a form error naming the node;
    the pinned key is not replaced."""
    config_entry.add_to_hass(hass)
    pinned = dict(config_entry.data["host_keys"])
    sim.faults.change_host_key(1)
    result = await config_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _reconfigure_input(sim, node_strings(sim))
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "host_key_changed"}
    assert result["description_placeholders"]["host"] == node_strings(sim)[1]
    assert config_entry.data["host_keys"] == pinned


async def test_reconfigure_onto_another_cluster_aborts(
    hass: HomeAssistant, config_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """Pointing a cluster's head node at the head of another configured cluster aborts
    instead of creating two entries for one cluster."""
    config_entry.add_to_hass(hass)
    other = MockConfigEntry(
        domain=DOMAIN,
        title="Other",
        unique_id="10.0.0.99:22",
        data={**config_entry.data, "nodes": ["10.0.0.99:22"], "host_keys": {}},
        options={CONF_VOICE_BRIDGES: False},
    )
    other.add_to_hass(hass)
    result = await other.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _reconfigure_input(sim, node_strings(sim))
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert other.data["nodes"] == ["10.0.0.99:22"]


async def test_host_key_fix_flow_with_the_node_down(
    hass: HomeAssistant, config_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """The host key repair cannot fetch the new key while the node is down: it aborts with
    cannot_connect and the issue stays for a later try."""
    assert await async_setup_component(hass, REPAIRS_DOMAIN, {})
    sim.faults.change_host_key(1)
    config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    issue_id = f"host_key_changed_{config_entry.entry_id}_{node_strings(sim)[1]}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    await sim.nodes[1].stop()
    flows: RepairsFlowManager = hass.data[REPAIRS_DOMAIN]["flow_manager"]
    result = await flows.async_init(DOMAIN, data={"issue_id": issue_id})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "cannot_connect"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None


async def _swap_to_gemma_until_loading(
    hass: HomeAssistant, entry: MockConfigEntry, sim: SimCluster, load_seconds: float
) -> None:
    """Start a swap to gemma4 whose load takes `load_seconds`; return once it loads."""
    sim.faults.slow_start(load_seconds)
    await hass.services.async_call(
        DOMAIN,
        "swap_model",
        {"cluster": entry.entry_id, "model": "gemma4", "wait": False},
        blocking=True,
        return_response=True,
    )
    await async_wait_until(hass, lambda: _swap_phase(hass) == "loading")


async def test_head_node_host_key_changing_during_a_swap(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """The head node comes back with another host key while a swap follows its log: the swap
    fails (event) and the host key repair issue names the head node."""
    assert await async_setup_component(hass, REPAIRS_DOMAIN, {})
    failed = async_capture_events(hass, EVENT_SWAP_FAILED)
    await _swap_to_gemma_until_loading(hass, loaded_entry, sim, 2.0)
    sim.faults.change_host_key(0)
    await async_node_hangs_up(loaded_entry, sim, 0)
    await async_wait_until(hass, lambda: bool(failed))
    assert failed[0].data["model"] == "gemma4"
    head = node_strings(sim)[0]
    issue_id = f"host_key_changed_{loaded_entry.entry_id}_{head}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    # Said in words, naming the node; the library's English stays in `reason` and the log.
    assert (failed[0].data["cause"], failed[0].data["detail"]) == ("host_key_changed", head)
    assert failed[0].data["reason"].startswith(f"Host key of {head} changed")
    assert _swap_failure_notice(hass, loaded_entry).endswith(
        f"failed: the SSH host key of {head} has changed (see the repair issue)"
    )
    await hass.async_block_till_done(wait_background_tasks=True)


def _swap_failure_notice(hass: HomeAssistant, entry: MockConfigEntry) -> str:
    """The failed swap's notification, up to its log tail."""
    notice = _async_get_or_create_notifications(hass)[f"{DOMAIN}_{entry.entry_id}_swap_failed"]
    message: str = notice["message"]
    return message.split("\n", 1)[0]


async def test_head_node_lost_during_a_swap_is_said_in_words(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """The head node stops answering SSH while a swap follows its log: the failure names the
    node in the integration's words, not asyncssh's or the library's English."""
    hass.config_entries.async_update_entry(
        loaded_entry, options={**loaded_entry.options, CONF_SWAP_FALLBACK: False}
    )
    failed = async_capture_events(hass, EVENT_SWAP_FAILED)
    await _swap_to_gemma_until_loading(hass, loaded_entry, sim, 2.0)
    await sim.nodes[0].stop()
    await async_wait_until(hass, lambda: bool(failed))
    head = node_strings(sim)[0]
    assert (failed[0].data["cause"], failed[0].data["detail"]) == ("ssh_unreachable", head)
    assert failed[0].data["reason"].startswith(f"Cannot connect to {head}")
    notice = _swap_failure_notice(hass, loaded_entry)
    assert notice.endswith(f"failed: {head} could not be reached over SSH")
    assert "Cannot connect" not in notice
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_swap_survives_the_head_connection_dropping_while_loading(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """The head node's SSH connection drops while the swap follows the load log: the log is
    followed again over a new connection and the swap completes."""
    finished = async_capture_events(hass, EVENT_SWAP_FINISHED)
    failed = async_capture_events(hass, EVENT_SWAP_FAILED)
    await _swap_to_gemma_until_loading(hass, loaded_entry, sim, 1.5)
    follows_before = sum("docker logs" in command for command in sim.nodes[0].commands)
    for conn in list(sim.nodes[0].connections):
        conn.abort()
    await async_wait_until(hass, lambda: bool(finished or failed))
    assert not failed
    assert finished[0].data["model"] == "gemma4"
    assert sum("docker logs" in command for command in sim.nodes[0].commands) > follows_before
    assert hass.states.get(SELECT).state == "Gemma 4 27B Instruct"  # type: ignore[union-attr]
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_vllm_container_stopped_during_the_load(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """Someone stops the vLLM container while the model loads: the log follow ends, the
    container is found stopped, and the swap fails saying so (no traceback involved). (The
    fallback that follows is tested in test_swap.py; here it is off.)"""
    hass.config_entries.async_update_entry(
        loaded_entry, options={**loaded_entry.options, CONF_SWAP_FALLBACK: False}
    )
    failed = async_capture_events(hass, EVENT_SWAP_FAILED)
    await _swap_to_gemma_until_loading(hass, loaded_entry, sim, 1.5)
    await sim.world.docker.stop(sim.containers["vllm_node"])
    await async_wait_until(hass, lambda: bool(failed))
    assert failed[0].data["reason"] == "container exited before startup completed"
    assert hass.states.get("sensor.lab_vllm_swap_status").state == "failed"  # type: ignore[union-attr]
    assert "docker inspect vllm_node" in sim.nodes[0].commands
    await hass.async_block_till_done(wait_background_tasks=True)
