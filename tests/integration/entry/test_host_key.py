"""Pinned host keys: a changed key blocks the entry and raises a repair issue whose fix flow
pins the new key after the user confirms its fingerprint; a node that is down retries."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from homeassistant.components.repairs import DOMAIN as REPAIRS_DOMAIN
from homeassistant.components.repairs.issue_handler import RepairsFlowManager
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spark_control.const import CONF_HOST_KEYS, CONF_NODES, DOMAIN
from tests.ha_entry import async_node_hangs_up
from tests.sim import SimCluster
from tests.sim_entry import entry_identity, node_strings


def _fix_flows(hass: HomeAssistant) -> RepairsFlowManager:
    """The repairs flow manager the frontend talks to."""
    manager: RepairsFlowManager = hass.data[REPAIRS_DOMAIN]["flow_manager"]
    return manager


async def _start_fix_flow(hass: HomeAssistant, issue_id: str) -> dict[str, Any]:
    return dict(await _fix_flows(hass).async_init(DOMAIN, data={"issue_id": issue_id}))


async def test_changed_host_key_repair(
    hass: HomeAssistant, config_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """A node with a new host key is refused; the repair names it and pins the new key."""
    assert await async_setup_component(hass, REPAIRS_DOMAIN, {})
    old_fingerprint = sim.nodes[1].host_key_fingerprint
    sim.faults.change_host_key(1)
    config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.SETUP_ERROR
    # Nothing but the key exchange happened with the changed node.
    assert "uname -srm" not in sim.nodes[1].commands

    node = node_strings(sim)[1]
    issue_id = f"host_key_changed_{config_entry.entry_id}_{node}"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_placeholders == {
        "cluster": "Lab",
        "node": node,
        "expected": old_fingerprint,
        "actual": sim.nodes[1].host_key_fingerprint,
    }

    result = await _start_fix_flow(hass, issue_id)
    assert result["step_id"] == "confirm"
    placeholders = result["description_placeholders"]
    assert isinstance(placeholders, dict)
    assert placeholders["actual"] == sim.nodes[1].host_key_fingerprint

    done = await _fix_flows(hass).async_configure(str(result["flow_id"]), {})
    assert done["type"] == "create_entry"
    await hass.async_block_till_done()
    assert (
        config_entry.data[CONF_HOST_KEYS][node].split()[:2]
        == (sim.nodes[1].host_public_key.split()[:2])
    )
    assert config_entry.state is ConfigEntryState.LOADED
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    await hass.config_entries.async_unload(config_entry.entry_id)


async def test_fix_flow_refuses_a_key_that_changed_again(
    hass: HomeAssistant, config_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """The user confirms the fingerprint they saw, not whatever the node shows later."""
    assert await async_setup_component(hass, REPAIRS_DOMAIN, {})
    sim.faults.change_host_key(0)
    config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    node = node_strings(sim)[0]
    issue_id = f"host_key_changed_{config_entry.entry_id}_{node}"
    result = await _start_fix_flow(hass, issue_id)
    shown = result["description_placeholders"]["actual"]
    sim.faults.change_host_key(0)

    again = await _fix_flows(hass).async_configure(str(result["flow_id"]), {})
    assert again["errors"] == {"base": "key_changed_again"}
    assert again["description_placeholders"]["actual"] != shown  # type: ignore[index]
    assert config_entry.state is ConfigEntryState.SETUP_ERROR


async def test_node_down_retries(
    hass: HomeAssistant, config_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """A node that does not answer SSH makes setup retry later (not an error)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    data = dict(config_entry.data)
    dead = f"127.0.0.1:{dead_port}"
    data[CONF_NODES] = [*data[CONF_NODES], dead]
    data[CONF_HOST_KEYS] = {**data[CONF_HOST_KEYS], dead: sim.nodes[0].host_public_key}
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Lab",
        **entry_identity(data),
        data=data,
        options=dict(config_entry.options),
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert dead in (entry.reason or "")


async def test_host_key_change_while_running(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """A node that comes back with another key (reinstalled) is caught on reconnect: the
    repair issue appears and the entry stops talking to the cluster."""
    sim.faults.change_host_key(1)
    # The node rebooted: our kept connection is gone.
    await async_node_hangs_up(loaded_entry, sim, 1)
    await loaded_entry.runtime_data.metrics.async_refresh()
    await hass.async_block_till_done()
    issue_id = f"host_key_changed_{loaded_entry.entry_id}_{node_strings(sim)[1]}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    assert loaded_entry.state is ConfigEntryState.SETUP_ERROR


async def test_host_key_change_met_by_an_action(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """An action that meets the changed key follows the same policy as the polls: a translated
    error, the repair issue, and the entry reloaded into its setup error."""
    sim.faults.change_host_key(1)
    await async_node_hangs_up(loaded_entry, sim, 1)
    with pytest.raises(HomeAssistantError) as error:
        await hass.services.async_call(
            DOMAIN,
            "restart_service",
            {"cluster": loaded_entry.entry_id, "service": "parakeet"},
            blocking=True,
        )
    assert error.value.translation_key == "host_key_changed"
    issue_id = f"host_key_changed_{loaded_entry.entry_id}_{node_strings(sim)[1]}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    await hass.async_block_till_done()
    assert loaded_entry.state is ConfigEntryState.SETUP_ERROR
