"""Setup, unload and reload of a cluster entry against the simulator."""

from __future__ import annotations

import asyncio
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spark_control.const import DOMAIN
from tests.sim import SimCluster


async def test_setup_and_unload(
    hass: HomeAssistant, init_integration: MockConfigEntry, sim: SimCluster
) -> None:
    """Setup connects over SSH (the probe ran on every node) and unload closes everything."""
    for node in sim.nodes:
        assert "uname -srm" in node.commands
    state = hass.states.get("select.lab_vllm_model")
    assert state is not None
    assert state.state == "qwen36"
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert init_integration.state is ConfigEntryState.NOT_LOADED


async def test_reload_and_remove(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim: SimCluster,
    hass_storage: dict[str, Any],
) -> None:
    """Reload reconnects; removing the entry closes the SSH connections and forgets the
    stored catalog."""
    await hass.services.async_call(
        DOMAIN,
        "add_model",
        {"cluster": init_integration.entry_id, "name": "Tiny", "repo_id": "org/tiny-model"},
        blocking=True,
        return_response=True,
    )
    key = f"{DOMAIN}.{init_integration.entry_id}.catalog"
    assert key in hass_storage
    assert await hass.config_entries.async_reload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert init_integration.state is ConfigEntryState.LOADED
    assert "tiny" in hass.states.get("select.lab_vllm_model").attributes["options"]  # type: ignore[union-attr]

    assert await hass.config_entries.async_remove(init_integration.entry_id)
    await hass.async_block_till_done()
    assert key not in hass_storage
    # Our SSH sessions are gone on the simulator side too.
    await asyncio.sleep(0.1)
    assert all(not node.connections for node in sim.nodes)
