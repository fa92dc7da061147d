"""Setup, unload and reload of a cluster entry against the simulator."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

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
