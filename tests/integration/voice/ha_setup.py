"""A Spark Control entry with voice bridges, set up in the test Home Assistant."""

from __future__ import annotations

import socket
from typing import Any

from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spark_control.const import (
    CONF_STT_PORT,
    CONF_TTS_PORT,
    CONF_VOICE_BRIDGES,
    DOMAIN,
)
from tests.sim import SimCluster
from tests.sim_entry import entry_identity, sim_entry_data


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        return int(sock.getsockname()[1])


def lan_address() -> str:
    """The address this host uses towards the mDNS group (what HA's network helper finds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("224.0.0.251", 1))
        return str(sock.getsockname()[0])


def cluster_entry(sim: SimCluster, client_key: tuple[str, str], **options: Any) -> MockConfigEntry:
    """A cluster entry for the simulator, as the config flow creates it."""
    data = sim_entry_data(sim, *client_key)
    return MockConfigEntry(
        domain=DOMAIN,
        title="Lab",
        **entry_identity(data),
        data=data,
        options={
            CONF_VOICE_BRIDGES: True,
            CONF_STT_PORT: free_port(),
            CONF_TTS_PORT: free_port(),
            **options,
        },
    )
