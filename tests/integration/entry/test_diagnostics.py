"""Diagnostics: what a bug report carries, with the SSH keys redacted."""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.spark_control.const import EVENT_WEDGE_REPORT
from tests.sim import SimCluster

from .entity_snapshot import port_labels, stable


def assert_no_secrets(
    diagnostics: dict[str, Any], sim: SimCluster, client_key: tuple[str, str]
) -> None:
    text = str(diagnostics)
    assert client_key[0].strip().splitlines()[1] not in text
    assert client_key[1].split()[1] not in text
    for node in sim.nodes:
        assert node.host_public_key.split()[1] not in text
    assert diagnostics["entry"]["data"]["private_key"] == "**REDACTED**"
    # Host keys appear only as the fingerprints `ssh-keygen -l` shows.
    assert sorted(diagnostics["entry"]["data"]["host_keys"].values()) == sorted(
        node.host_key_fingerprint for node in sim.nodes
    )


async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    loaded_entry: MockConfigEntry,
    sim: SimCluster,
    client_key: tuple[str, str],
    snapshot: SnapshotAssertion,
) -> None:
    """The private and public keys never appear; recovery state after a wedge is there; the
    rest matches the snapshot."""
    assert await async_setup_component(hass, "diagnostics", {})
    sim.faults.wedge("parakeet")
    hass.bus.async_fire(
        EVENT_WEDGE_REPORT, {"service": "parakeet", "error": "HTTP 500", "source": "gateway"}
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, loaded_entry)
    assert_no_secrets(diagnostics, sim, client_key)
    parakeet = diagnostics["recovery"]["services"]["parakeet"]
    assert parakeet["restarts_in_window"] == 1
    assert parakeet["checks"] >= 1
    assert diagnostics["metrics"]["containers"]["vllm"]["state"] == "running"
    # Fingerprints and wedge times change every run: checked above, left out of the snapshot.
    diagnostics["entry"]["data"].pop("host_keys")
    for service in diagnostics["recovery"]["services"].values():
        service.pop("last_wedge_at")
        service.pop("last_result")
        service.pop("checks")  # the probe after a restart may need another round when busy
    for container in diagnostics["metrics"]["containers"].values():
        container.pop("status")  # "Up 2 seconds"
    assert stable(diagnostics, port_labels(sim)) == snapshot
