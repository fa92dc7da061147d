"""Snapshots of every platform's entities against a freshly started simulated cluster."""

from __future__ import annotations

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from tests.sim import SimCluster

from .entity_snapshot import snapshot_entities


@pytest.mark.parametrize("domain", ["binary_sensor", "button", "select", "sensor", "switch"])
async def test_platform_snapshot(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim: SimCluster,
    snapshot: SnapshotAssertion,
    domain: str,
) -> None:
    """Names, units, classes, devices and the first readings of each platform."""
    await snapshot_entities(hass, sim, snapshot, init_integration.entry_id, domain)
