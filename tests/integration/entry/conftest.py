"""Fixtures for the HA integration tests: a real simulated cluster and a real Home Assistant
(the loaded-entry harness is shared with the recovery suite: tests/ha_entry.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spark_control.const import (
    CONF_VOICE_BRIDGES,
    DOMAIN,
)
from tests.ha_entry import _custom_integrations, _quiet_zeroconf, loaded_entry
from tests.sim import SimCluster, SimConfig, generate_client_key
from tests.sim_entry import entry_identity, sim_entry_data


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
def config_entry(sim: SimCluster, client_key: tuple[str, str]) -> MockConfigEntry:
    """A cluster entry pointing at the simulator."""
    data = entry_data(sim, client_key)
    return MockConfigEntry(
        domain=DOMAIN,
        title="Lab",
        **entry_identity(data),
        data=data,
        entry_id="01JSPARKCONTROLTESTENTRY00",
        # The voice bridges (tested in tests/integration/voice) stay out of these tests.
        options={CONF_VOICE_BRIDGES: False},
    )


__all__ = ["_custom_integrations", "_quiet_zeroconf", "loaded_entry"]
