"""Snapshots of every platform's entities against a freshly started simulated cluster."""

from __future__ import annotations

import pytest
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.spark_control.binary_sensor import BINARY_SENSORS
from custom_components.spark_control.button import BUTTONS
from custom_components.spark_control.select import MODEL_SELECT
from custom_components.spark_control.sensor import GPU_SENSORS, SWAP_SENSOR, VLLM_SENSORS
from custom_components.spark_control.switch import SWITCHES
from tests.ha_entry import enable_all_entities
from tests.sim import SimCluster

from .entity_snapshot import snapshot_entities

# The entities of the control plane (recovery's entities on the same platforms are tested in
# tests/integration/recovery, so a change there does not break these snapshots).
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
    loaded_entry: MockConfigEntry,
    sim: SimCluster,
    snapshot: SnapshotAssertion,
    domain: str,
) -> None:
    """Names, units, classes, devices and the first readings of each platform (entities that
    are disabled by default enabled first)."""
    await enable_all_entities(hass, loaded_entry)
    await snapshot_entities(hass, sim, snapshot, loaded_entry.entry_id, domain, OWN_KEYS)


async def test_requests_waiting_disabled_by_default(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """Requests waiting (a queue forms only under load) is the one control-plane sensor that
    starts disabled and has no state; enabled, it reads like the others."""
    registry = er.async_get(hass)
    waiting = "sensor.lab_vllm_requests_waiting"
    item = registry.async_get(waiting)
    assert item is not None
    assert item.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    assert hass.states.get(waiting) is None
    assert await enable_all_entities(hass, loaded_entry) == [waiting]
    assert hass.states.get(waiting).state == "0"  # type: ignore[union-attr]


async def test_gpu_power_on_by_default(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    """Each node's GPU power is there from the start, as a gauge and graph on the dashboard
    need it: in watts, read from nvidia-smi."""
    registry = er.async_get(hass)
    power = [
        item
        for item in er.async_entries_for_config_entry(registry, loaded_entry.entry_id)
        if item.unique_id.endswith("_gpu_power")
    ]
    assert sorted(item.entity_id for item in power) == [
        "sensor.spark_1_gpu_power",
        "sensor.spark_2_gpu_power",
    ]
    for item in power:
        assert item.disabled_by is None
        state = hass.states.get(item.entity_id)
        assert state is not None
        assert state.attributes["unit_of_measurement"] == "W"
        assert float(state.state) > 0


async def test_gpu_power_limit_only_where_the_gpu_reports_one(
    hass: HomeAssistant, sim: SimCluster, config_entry: MockConfigEntry
) -> None:
    """A node whose GPU reports an enforced power limit gets a `GPU power limit` sensor (the
    dashboard's power gauge range); a GB10 prints `[N/A]` for it and gets none, rather than
    an entity that would never have a value. A changed limit shows on the next poll."""
    sim.world.gpu_power_limits[0] = 300.0  # spark-1 as a discrete GPU; spark-2 a GB10
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    registry = er.async_get(hass)
    limits = [
        item
        for item in er.async_entries_for_config_entry(registry, config_entry.entry_id)
        if item.unique_id.endswith("_gpu_power_limit")
    ]
    assert [item.entity_id for item in limits] == ["sensor.spark_1_gpu_power_limit"]
    assert limits[0].entity_category is EntityCategory.DIAGNOSTIC
    state = hass.states.get("sensor.spark_1_gpu_power_limit")
    assert state is not None
    assert state.state == "300.0"
    assert state.attributes["unit_of_measurement"] == "W"
    assert state.attributes["friendly_name"] == "spark-1 GPU power limit"

    sim.world.gpu_power_limits[0] = 250.0  # nvidia-smi -pl 250
    await config_entry.runtime_data.metrics.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get("sensor.spark_1_gpu_power_limit").state == "250.0"  # type: ignore[union-attr]
    assert await hass.config_entries.async_unload(config_entry.entry_id)


async def test_gpu_reading_a_node_does_not_report_is_unavailable(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """A GPU without a power sensor prints `[N/A]` for `power.draw`: that node's power sensor
    is unavailable (not "unknown"), the other node's and the node's other readings stay."""
    sim.world.unreported_gpu_fields[1] = {"power.draw"}
    await loaded_entry.runtime_data.metrics.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get("sensor.spark_2_gpu_power").state == "unavailable"  # type: ignore[union-attr]
    assert float(hass.states.get("sensor.spark_1_gpu_power").state) > 0  # type: ignore[union-attr]
    assert float(hass.states.get("sensor.spark_2_gpu_temperature").state) > 0  # type: ignore[union-attr]

    sim.world.unreported_gpu_fields.clear()
    await loaded_entry.runtime_data.metrics.async_refresh()
    await hass.async_block_till_done()
    assert float(hass.states.get("sensor.spark_2_gpu_power").state) > 0  # type: ignore[union-attr]


async def test_no_entity_reads_unknown_on_an_idle_cluster(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """Where nothing happened yet (no wedge, no download, no swap) the entities a user sees
    say so (0, idle, never) rather than "unknown". Buttons are stateless: their "unknown"
    means never pressed, and the frontend shows their Press action instead."""
    registry = er.async_get(hass)
    unknown = [
        item.entity_id
        for item in er.async_entries_for_config_entry(registry, loaded_entry.entry_id)
        if item.disabled_by is None
        and item.domain != "button"
        and (state := hass.states.get(item.entity_id)) is not None
        and state.state == "unknown"
    ]
    assert unknown == []
