"""Diagnostics: what a bug report carries, with the SSH keys redacted."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from tests.sim import SimCluster

from .entity_snapshot import port_labels, stable


async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
    sim: SimCluster,
    client_key: tuple[str, str],
    snapshot: SnapshotAssertion,
) -> None:
    """The private and public keys never appear; the rest matches the snapshot."""
    assert await async_setup_component(hass, "diagnostics", {})
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)
    text = str(diagnostics)
    assert client_key[0].strip().splitlines()[1] not in text
    assert client_key[1].split()[1] not in text
    assert diagnostics["entry"]["data"]["private_key"] == "**REDACTED**"
    # Host keys are public and change every run: checked, then left out of the snapshot.
    host_keys = diagnostics["entry"]["data"].pop("host_keys")
    assert len(host_keys) == 2
    assert stable(diagnostics, port_labels(sim)) == snapshot
