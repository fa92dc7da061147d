"""Home Assistant harness fixtures for the recovery tests: the integration on the simulator."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spark_control.const import (
    CONF_DEEP_CHECK_INTERVAL,
    CONF_PROBE_TIMEOUT,
    CONF_VOICE_BRIDGES,
    DOMAIN,
)
from custom_components.spark_control.sparklib.keys import KeyPair
from tests.ha_entry import _custom_integrations, _quiet_zeroconf, loaded_entry
from tests.sim import SimCluster
from tests.sim_entry import entry_identity, sim_entry_data

ENTRY_ID = "01JSPARKRECOVERYTESTENTRY0"


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


__all__ = ["_custom_integrations", "_quiet_zeroconf", "loaded_entry"]
