"""The Home Assistant harness every suite that loads the integration shares: this repository's
integration allowed, HA's zeroconf stand-in, the one loaded-entry fixture, and the one way to
wait for something the integration does in the background.

A suite's conftest imports these fixtures and provides `config_entry` (the MockConfigEntry of
its simulated cluster, with the options that suite wants).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any
from unittest.mock import MagicMock

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import MATCH_ALL
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from tests.sim import SimCluster


@pytest.fixture(autouse=True)
def _custom_integrations(enable_custom_integrations: None) -> None:
    """Let HA load this repository's integration."""


@pytest.fixture(autouse=True)
def _quiet_zeroconf(mock_async_zeroconf: MagicMock) -> None:
    """HA's zeroconf (a manifest dependency, used by the voice bridges) gets the harness's
    stand-in: multicast on the test host is not a peer of the control plane, and the real
    one's threads outlive the test loop."""


@pytest.fixture
async def loaded_entry(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> AsyncIterator[MockConfigEntry]:
    """The integration set up against the simulator; unloaded again afterwards."""
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.LOADED
    yield config_entry
    if config_entry.state is ConfigEntryState.LOADED:
        assert await hass.config_entries.async_unload(config_entry.entry_id)
        await hass.async_block_till_done()


async def logbook_of(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator, start: datetime, entity_id: str
) -> list[dict[str, Any]]:
    """The logbook of one entity since `start`, as its page (and a logbook card listing it)
    asks HA for it (needs the recorder and the logbook set up)."""
    await async_wait_recording_done(hass)
    client = await hass_ws_client()
    await client.send_json(
        {
            "id": 1,
            "type": "logbook/get_events",
            "start_time": start.isoformat(),
            "entity_ids": [entity_id],
        }
    )
    response = await client.receive_json()
    assert response["success"]
    entries: list[dict[str, Any]] = response["result"]
    return entries


async def async_wait_until(
    hass: HomeAssistant,
    condition: Callable[[], bool],
    timeout: float = 30,
) -> None:
    """Wait until `condition()` holds, checked now and after every event on HA's bus (state
    changes, the integration's own events), never on a timer. The deadline is generous on
    purpose: the simulator answers over real sockets on a shared machine."""
    if condition():
        return
    met = asyncio.Event()

    @callback
    def check(_event: Event) -> None:
        if condition():
            met.set()

    unsubscribe = hass.bus.async_listen(MATCH_ALL, check)
    try:
        async with asyncio.timeout(timeout):
            await met.wait()
    finally:
        unsubscribe()


async def async_node_hangs_up(entry: MockConfigEntry, sim: SimCluster, index: int) -> None:
    """Simulated node `index` hangs up the integration's kept SSH connection (a reboot, a
    network blip); returns once both ends have seen it close, so the next command reconnects."""
    port = sim.nodes[index].ssh_port
    client_node = next(n for n in entry.runtime_data.client.nodes.values() if n.port == port)
    await sim.nodes[index].drop_connections()
    await client_node.wait_closed()


async def enable_all_entities(hass: HomeAssistant, entry: MockConfigEntry) -> list[str]:
    """Enable the entities that are disabled by default (as a user does in the UI) and reload
    so they get a state; returns their entity ids."""
    registry = er.async_get(hass)
    disabled = [
        item.entity_id
        for item in er.async_entries_for_config_entry(registry, entry.entry_id)
        if item.disabled_by is not None
    ]
    for entity_id in disabled:
        registry.async_update_entity(entity_id, disabled_by=None)
    if disabled:
        assert await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done()
    return sorted(disabled)
