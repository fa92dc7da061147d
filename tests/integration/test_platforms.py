"""Snapshots of every platform's entities against a freshly started simulated cluster."""

from __future__ import annotations

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.spark_control.binary_sensor import BINARY_SENSORS
from custom_components.spark_control.button import BUTTONS
from custom_components.spark_control.select import MODEL_SELECT
from custom_components.spark_control.sensor import GPU_SENSORS, SWAP_SENSOR, VLLM_SENSORS
from custom_components.spark_control.switch import SWITCHES
from tests.sim import SimCluster

from .entity_snapshot import snapshot_entities

# The entities of the control plane (recovery's entities on the same platforms are tested in
# tests/recovery, so a change there does not break these snapshots).
OWN_KEYS = tuple(
    description.key
    for description in (
        *BINARY_SENSORS,
        *BUTTONS,
        MODEL_SELECT,
        *GPU_SENSORS,
        SWAP_SENSOR,
        *VLLM_SENSORS,
        *SWITCHES,
    )
)


@pytest.mark.parametrize("domain", ["binary_sensor", "button", "select", "sensor", "switch"])
async def test_platform_snapshot(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim: SimCluster,
    snapshot: SnapshotAssertion,
    domain: str,
) -> None:
    """Names, units, classes, devices and the first readings of each platform."""
    await snapshot_entities(hass, sim, snapshot, init_integration.entry_id, domain, OWN_KEYS)
