"""Home Assistant harness fixtures for the recovery tests: the integration on the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from unittest.mock import MagicMock

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spark_control.const import (
    CONF_DEEP_CHECK_INTERVAL,
    CONF_PROBE_TIMEOUT,
    CONF_VOICE_BRIDGES,
    DOMAIN,
)
from custom_components.spark_control.sparklib.keys import KeyPair
from tests.sim import SimCluster
from tests.sim_entry import entry_identity, sim_entry_data

ENTRY_ID = "01JSPARKRECOVERYTESTENTRY0"


@pytest.fixture(autouse=True)
def _custom_integrations(enable_custom_integrations: None) -> None:
    """Let HA load this repository's `spark_control`."""


@pytest.fixture(autouse=True)
def _quiet_zeroconf(mock_async_zeroconf: MagicMock) -> None:
    """HA's zeroconf (a manifest dependency of the voice bridges) gets the harness stand-in:
    multicast on the test host is no peer of recovery, and the real one's threads outlive
    the test loop."""


def entry_data(sim: SimCluster, key: KeyPair) -> dict[str, Any]:
    """Config entry data for the simulated cluster, shaped as the config flow stores it."""
    return sim_entry_data(sim, key.private_key, key.public_key)


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """Options of the test entry; tests override to change the recovery settings."""
    return {CONF_VOICE_BRIDGES: False, CONF_DEEP_CHECK_INTERVAL: 0, CONF_PROBE_TIMEOUT: 30}


@pytest.fixture
def config_entry(
    sim: SimCluster, client_key: KeyPair, entry_options: dict[str, Any]
) -> MockConfigEntry:
    """A cluster entry pointing at the simulator."""
    data = entry_data(sim, client_key)
    return MockConfigEntry(
        domain=DOMAIN,
        title="Lab",
        **entry_identity(data),
        data=data,
        entry_id=ENTRY_ID,
        options=entry_options,
    )


@pytest.fixture
async def loaded_entry(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> AsyncIterator[MockConfigEntry]:
    """The integration set up against the simulator; unloaded afterwards."""
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.LOADED
    yield config_entry
    if config_entry.state is ConfigEntryState.LOADED:
        assert await hass.config_entries.async_unload(config_entry.entry_id)
        await hass.async_block_till_done()
