"""Setup, unload and reload of a cluster entry against the simulator."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spark_control.const import DOMAIN, EVENT_WEDGE_REPORT
from tests.sim import SimCluster


async def test_setup_and_unload(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """Setup connects over SSH (the probe ran on every node) and unload closes everything."""
    for node in sim.nodes:
        assert "uname -srm" in node.commands
    state = hass.states.get("select.lab_vllm_model")
    assert state is not None
    assert state.state == "Qwen3.6 35B-A3B (NVFP4)"
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert loaded_entry.state is ConfigEntryState.NOT_LOADED


async def test_reload_and_remove(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    sim: SimCluster,
    hass_storage: dict[str, Any],
) -> None:
    """Reload reconnects (the catalog's subentries stay); removing the entry closes the SSH
    connections and forgets the stored restart budget."""
    await hass.services.async_call(
        DOMAIN,
        "add_model",
        {"cluster": loaded_entry.entry_id, "name": "Tiny", "repo_id": "org/tiny-model"},
        blocking=True,
        return_response=True,
    )
    # The user's models live in the entry's config subentries (removed with the entry).
    assert [sub.unique_id for sub in loaded_entry.subentries.values()] == ["tiny"]
    # A wedge restarts Parakeet, which spends (and persists) a restart of the budget.
    budget_key = f"{DOMAIN}.recovery.{loaded_entry.entry_id}"
    sim.faults.wedge("parakeet")
    hass.bus.async_fire(
        EVENT_WEDGE_REPORT, {"service": "parakeet", "error": "HTTP 500", "source": "gateway"}
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    assert "docker restart parakeet-asr" in sim.nodes[1].commands
    assert len(hass_storage[budget_key]["data"]["budget"]["restarts"]["parakeet"]) == 1
    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert loaded_entry.state is ConfigEntryState.LOADED
    assert "Tiny" in hass.states.get("select.lab_vllm_model").attributes["options"]  # type: ignore[union-attr]

    assert await hass.config_entries.async_remove(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert budget_key not in hass_storage
    # Our SSH sessions are gone on the simulator side too.
    for node in sim.nodes:
        await node.wait_disconnected()
    assert all(not node.connections for node in sim.nodes)
