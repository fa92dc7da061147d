"""Snapshot every entity of a platform with the simulator's random ports named instead.

HA's `snapshot_platform` keys snapshots by entity id; ours contain node strings such as
`127.0.0.1:40123`, whose ports change every run. This helper records the same facts (registry
entry and state) with each port replaced by a stable label, so the snapshot is reviewable and
stable.
"""

from __future__ import annotations

import re
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from syrupy.assertion import SnapshotAssertion

from custom_components.spark_control.sparklib.keys import fingerprint
from tests.sim import SimCluster


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def port_labels(sim: SimCluster) -> dict[str, str]:
    """Each random port (and the host key) of the simulator and the label that stands for it."""
    labels = {str(node.ssh_port): f"ssh{index}" for index, node in enumerate(sim.nodes)}
    labels[str(_port(sim.vllm.url))] = "vllmport"
    labels[str(_port(sim.parakeet.url))] = "parakeetport"
    labels[str(_port(sim.magpie.url))] = "magpieport"
    # The entry's unique id (prefix of every entity's) is the head's random host key.
    labels[fingerprint(sim.nodes[0].host_public_key)] = "headkey"
    return labels


def stable(value: Any, labels: dict[str, str]) -> Any:
    """`value` (JSON-like) with every simulator port, in text or as a number, labelled."""
    if isinstance(value, dict):
        return {stable(key, labels): stable(item, labels) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [stable(item, labels) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return labels.get(str(value), value)
    text = value if isinstance(value, str) else str(value)
    for raw, label in labels.items():
        if not raw.isdigit():
            text = text.replace(raw, label)
    return re.sub(r"\d{4,5}", lambda match: labels.get(match.group(0), match.group(0)), text)


async def snapshot_entities(
    hass: HomeAssistant,
    sim: SimCluster,
    snapshot: SnapshotAssertion,
    entry_id: str,
    domain: str,
    keys: tuple[str, ...],
) -> None:
    """Assert the entry's `domain` entities whose unique id ends in one of `keys` (registry
    entry, device, state) match the snapshot."""
    entity_registry = er.async_get(hass)
    device_registry = dr.async_get(hass)
    entries = [
        entry
        for entry in er.async_entries_for_config_entry(entity_registry, entry_id)
        if entry.domain == domain and entry.unique_id.endswith(keys)
    ]
    assert entries
    recorded: dict[str, Any] = {}
    for entry in sorted(entries, key=lambda item: item.entity_id):
        assert entry.disabled_by is None
        state = hass.states.get(entry.entity_id)
        assert state is not None
        device = device_registry.async_get(entry.device_id) if entry.device_id else None
        via = (
            device_registry.async_get(device.via_device_id)
            if device is not None and device.via_device_id
            else None
        )
        recorded[entry.entity_id] = {
            "unique_id": entry.unique_id,
            "translation_key": entry.translation_key,
            "original_device_class": entry.original_device_class,
            "entity_category": entry.entity_category,
            "unit_of_measurement": entry.unit_of_measurement,
            "capabilities": entry.capabilities,
            "device": device.name if device else None,
            "via_device": via.name if via else None,
            "state": state.state,
            "attributes": dict(state.attributes),
        }
    assert stable(recorded, port_labels(sim)) == snapshot
