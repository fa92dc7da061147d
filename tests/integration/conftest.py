"""Fixtures for the HA integration tests: a real simulated cluster and a real Home Assistant."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from unittest.mock import MagicMock

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spark_control.const import (
    CONF_VOICE_BRIDGES,
    DOMAIN,
)
from tests.sim import SimCluster, SimConfig, generate_client_key
from tests.sim_entry import entry_identity, sim_entry_data


@pytest.fixture(autouse=True)
def _custom_integrations(enable_custom_integrations: None) -> None:
    """Let HA load this repository's integration."""


@pytest.fixture(autouse=True)
def _quiet_zeroconf(mock_async_zeroconf: MagicMock) -> None:
    """HA's zeroconf (a manifest dependency, used by the voice bridges) gets the harness's
    stand-in: multicast on the test host is not a peer of the control plane, and the real
    one's threads outlive the test loop."""


@pytest.fixture(scope="session")
def client_key() -> tuple[str, str]:
    """The SSH key pair Home Assistant logs in with (private PEM, authorized_keys line)."""
    return generate_client_key("spark-control-test")


@pytest.fixture
def sim_config(client_key: tuple[str, str]) -> SimConfig:
    """Two nodes, fast loads; tests that need other settings override this fixture."""
    return SimConfig(nodes=2, authorized_keys=[client_key[1]], load_seconds=0.4)


@pytest.fixture
async def sim(sim_config: SimConfig) -> AsyncIterator[SimCluster]:
    """A running simulated cluster on loopback."""
    async with SimCluster(sim_config) as cluster:
        yield cluster


def entry_data(sim: SimCluster, client_key: tuple[str, str]) -> dict[str, Any]:
    """Config entry data for the simulated cluster, as the config flow would create it."""
    return sim_entry_data(sim, *client_key)


@pytest.fixture
def mock_config_entry(sim: SimCluster, client_key: tuple[str, str]) -> MockConfigEntry:
    """A cluster entry pointing at the simulator."""
    data = entry_data(sim, client_key)
    return MockConfigEntry(
        domain=DOMAIN,
        title="Lab",
        **entry_identity(data),
        data=data,
        entry_id="01JSPARKCONTROLTESTENTRY00",
        # The voice bridges (the voice engineer's, tested in tests/voice) stay out of these tests.
        options={CONF_VOICE_BRIDGES: False},
    )


@pytest.fixture
async def init_integration(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> AsyncIterator[MockConfigEntry]:
    """The integration set up against the simulator; unloaded again afterwards."""
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.LOADED
    yield mock_config_entry
    if mock_config_entry.state is ConfigEntryState.LOADED:
        assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
        await hass.async_block_till_done()
