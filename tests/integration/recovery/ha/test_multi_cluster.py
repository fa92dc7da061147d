"""Two clusters in one Home Assistant: a wedge report reaches only the cluster it belongs to
(named by the gateway's upstream URL or by entry_id); one that names no cluster is ignored."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.spark_control.const import (
    DOMAIN,
    EVENT_SERVICE_RESTARTED,
    EVENT_WEDGE_DETECTED,
    EVENT_WEDGE_REPORT,
)
from custom_components.spark_control.sparklib.keys import KeyPair
from tests.sim import SimCluster, SimConfig
from tests.sim_entry import entry_identity

from .conftest import entry_data


@pytest.fixture
async def other_sim(sim: SimCluster, client_key: KeyPair) -> AsyncIterator[SimCluster]:
    """A second cluster, set up like the first."""
    config = SimConfig(
        nodes=2,
        authorized_keys=[client_key.public_key],
        load_seconds=sim.config.load_seconds,
        restart_delay=sim.config.restart_delay,
    )
    async with SimCluster(config) as cluster:
        yield cluster


@pytest.fixture
async def other_entry(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    other_sim: SimCluster,
    client_key: KeyPair,
    entry_options: dict[str, object],
) -> AsyncIterator[MockConfigEntry]:
    data = entry_data(other_sim, client_key)
    entry = MockConfigEntry(
        domain=DOMAIN, title="Attic", **entry_identity(data), data=data, options=entry_options
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    yield entry
    assert await hass.config_entries.async_unload(entry.entry_id)


def _restarts(sim: SimCluster) -> int:
    return sum(node.commands.count("docker restart parakeet-asr") for node in sim.nodes)


async def test_wedge_report_reaches_only_its_cluster(
    hass: HomeAssistant,
    sim: SimCluster,
    other_sim: SimCluster,
    loaded_entry: MockConfigEntry,
    other_entry: MockConfigEntry,
) -> None:
    detected = async_capture_events(hass, EVENT_WEDGE_DETECTED)
    restarted = async_capture_events(hass, EVENT_SERVICE_RESTARTED)
    sim.faults.wedge("parakeet")
    other_sim.faults.wedge("parakeet")  # wedged too: a wrong probe would restart it
    other_probes = other_sim.parakeet.transcriptions

    report = {"service": "parakeet", "error": "HTTP 500", "source": "gateway"}
    hass.bus.async_fire(EVENT_WEDGE_REPORT, {**report, "upstream": sim.parakeet.url})
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [event.data["entry_id"] for event in detected] == [loaded_entry.entry_id]
    assert [event.data["cluster"] for event in restarted] == ["Lab"]
    assert _restarts(sim) == 1
    assert _restarts(other_sim) == 0
    assert other_sim.parakeet.transcriptions == other_probes

    # The other cluster's URL reaches the other cluster alone.
    hass.bus.async_fire(EVENT_WEDGE_REPORT, {**report, "upstream": other_sim.parakeet.url})
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [event.data["cluster"] for event in restarted] == ["Lab", "Attic"]
    assert _restarts(sim) == 1


async def test_report_without_a_cluster_is_ignored_when_there_are_several(
    hass: HomeAssistant,
    sim: SimCluster,
    other_sim: SimCluster,
    loaded_entry: MockConfigEntry,
    other_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    detected = async_capture_events(hass, EVENT_WEDGE_DETECTED)
    sim.faults.wedge("parakeet")
    other_sim.faults.wedge("parakeet")
    report = {"service": "parakeet", "error": "HTTP 500", "source": "gateway"}
    hass.bus.async_fire(EVENT_WEDGE_REPORT, report)
    hass.bus.async_fire(EVENT_WEDGE_REPORT, {**report, "upstream": "http://10.9.9.9:8000"})
    await hass.async_block_till_done(wait_background_tasks=True)
    assert detected == []
    assert _restarts(sim) == _restarts(other_sim) == 0
    assert caplog.text.count("it names no cluster") == 2

    # entry_id (the Wyoming bridge's reports) picks the cluster directly.
    hass.bus.async_fire(EVENT_WEDGE_REPORT, {**report, "entry_id": other_entry.entry_id})
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [event.data["cluster"] for event in detected] == ["Attic"]
    assert _restarts(sim) == 0
