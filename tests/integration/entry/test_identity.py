"""Which cluster an entry is: one head node however it is written, known by its host key, and
entries of older releases (unique id = head host) migrated without losing an entity id."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr, entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spark_control.const import (
    CONF_NODES,
    CONF_PRIVATE_KEY,
    CONF_SSH_PORT,
    CONF_VOICE_BRIDGES,
    DOMAIN,
)
from custom_components.spark_control.identity import head_address
from custom_components.spark_control.sparklib.keys import fingerprint
from tests.sim import SimCluster
from tests.sim_entry import node_strings, sim_entry_data


def _user_input(sim: SimCluster, nodes: str, ssh_port: int) -> dict[str, Any]:
    return {
        "cluster_name": "Lab again",
        "nodes": nodes,
        "ssh_user": sim.config.username,
        "ssh_port": ssh_port,
        "repo_path": sim.config.repo_path,
        "key_source": "paste",
    }


def _services_input(sim: SimCluster) -> dict[str, str]:
    return {
        service: f"127.0.0.1:{getattr(sim, service).url.rsplit(':', 1)[1]}"
        for service in ("vllm", "parakeet", "magpie")
    }


def test_head_address_is_one_spelling() -> None:
    """Port in the node string or as the SSH port, case, trailing dot, IPv6 spellings."""
    same = [
        {CONF_NODES: ["127.0.0.1:2222"], CONF_SSH_PORT: 22},
        {CONF_NODES: ["127.0.0.1"], CONF_SSH_PORT: 2222},
    ]
    assert {head_address(data) for data in same} == {("127.0.0.1", 2222)}
    assert head_address({CONF_NODES: ["Spark.LAN.", "b"], CONF_SSH_PORT: 22}) == ("spark.lan", 22)
    assert head_address({CONF_NODES: ["[0:0::1]:22"], CONF_SSH_PORT: 2}) == ("::1", 22)
    assert head_address({CONF_NODES: ["spark"], CONF_SSH_PORT: 22}) != head_address(
        {CONF_NODES: ["spark"], CONF_SSH_PORT: 2222}
    )


async def test_same_head_written_another_way_is_already_configured(
    hass: HomeAssistant, sim: SimCluster, config_entry: MockConfigEntry
) -> None:
    """`host:port` with SSH port 22 and `host` with that port as SSH port are one node: the
    flow stops at the first step, before any key is made (this once made two entries)."""
    config_entry.add_to_hass(hass)
    head = sim.nodes[0]
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        _user_input(sim, f"{head.host}, {node_strings(sim)[1]}", ssh_port=head.ssh_port),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


async def test_known_cluster_at_another_address_is_already_configured(
    hass: HomeAssistant,
    sim: SimCluster,
    config_entry: MockConfigEntry,
    client_key: tuple[str, str],
) -> None:
    """A host name instead of the IP is caught by the head node's host key once connected."""
    config_entry.add_to_hass(hass)
    nodes = ", ".join(f"localhost:{node.ssh_port}" for node in sim.nodes)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _user_input(sim, nodes, ssh_port=22)
    )
    assert result["step_id"] == "paste_key"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PRIVATE_KEY: client_key[0]}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


async def test_reconfigure_to_a_new_address_keeps_the_identity(
    hass: HomeAssistant, sim: SimCluster, config_entry: MockConfigEntry
) -> None:
    """The head node under a new name is the same cluster: accepted, unique id unchanged."""
    config_entry.add_to_hass(hass)
    unique_id = config_entry.unique_id
    result = await config_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            "nodes": ", ".join(f"localhost:{node.ssh_port}" for node in sim.nodes),
            "ssh_port": 22,
            "repo_path": sim.config.repo_path,
            **_services_input(sim),
        },
    )
    assert result["reason"] == "reconfigure_successful"
    assert config_entry.data[CONF_NODES][0] == f"localhost:{sim.nodes[0].ssh_port}"
    assert config_entry.unique_id == unique_id
    await hass.async_block_till_done()
    await hass.config_entries.async_unload(config_entry.entry_id)


async def test_reconfigure_onto_another_machine_aborts(
    hass: HomeAssistant, sim: SimCluster, config_entry: MockConfigEntry
) -> None:
    """Making the second node the head is another cluster (another host key)."""
    config_entry.add_to_hass(hass)
    head, second = node_strings(sim)
    result = await config_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"nodes": f"{second}, {head}", "ssh_port": 22, "repo_path": sim.config.repo_path}
        | _services_input(sim),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "different_cluster"
    assert config_entry.data[CONF_NODES] == [head, second]


def _old_entry(data: dict[str, Any], entry_id: str) -> MockConfigEntry:
    """An entry as releases before 1.2 stored it: the head's host string as unique id."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Lab",
        unique_id=data[CONF_NODES][0],
        version=1,
        minor_version=1,
        data=data,
        entry_id=entry_id,
        options={CONF_VOICE_BRIDGES: False},
    )


async def test_migration_keeps_entities_and_devices(
    hass: HomeAssistant, sim: SimCluster, client_key: tuple[str, str]
) -> None:
    """An old entry's entities and devices (registered under the host-based ids, as the old
    release left them) are renamed in place: same entity ids and device ids, nothing new."""
    data = sim_entry_data(sim, *client_key)
    old = data[CONF_NODES][0]
    entry = _old_entry(data, "01JSPARKCONTROLMIGRATION01")
    entry.add_to_hass(hass)
    entities = er.async_get(hass)
    model = entities.async_get_or_create(
        "select", DOMAIN, f"{old}_model", config_entry=entry, suggested_object_id="lab_model"
    )
    devices = dr.async_get(hass)
    vllm = devices.async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, f"{old}_vllm")}, name="Lab vLLM"
    )

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    key = fingerprint(sim.nodes[0].host_public_key)
    assert entry.state is ConfigEntryState.LOADED
    assert (entry.version, entry.minor_version, entry.unique_id) == (1, 2, key)
    migrated = entities.async_get(model.entity_id)
    assert migrated is not None
    assert migrated.unique_id == f"{key}_model"
    assert entities.async_get_entity_id("select", DOMAIN, f"{key}_model") == "select.lab_model"
    # The running entity is the migrated one (no "_2" twin), and it has a state.
    state = hass.states.get("select.lab_model")
    assert state is not None
    assert state.state in state.attributes["options"]  # the loaded model, from the cluster
    assert not [
        e
        for e in er.async_entries_for_config_entry(entities, entry.entry_id)
        if e.unique_id.startswith(f"{old}_")
    ]
    device = devices.async_get(vllm.id)
    assert device is not None
    assert device.identifiers == {(DOMAIN, f"{key}_vllm")}
    assert {d.id for d in dr.async_entries_for_config_entry(devices, entry.entry_id)} >= {vllm.id}
    await hass.config_entries.async_unload(entry.entry_id)


async def test_migration_of_a_duplicate_entry_keeps_both(
    hass: HomeAssistant, sim: SimCluster, client_key: tuple[str, str]
) -> None:
    """Two old entries for one cluster (the head written two ways): the first takes the host
    key as its id, the second keeps its old id instead of failing to load."""
    data = sim_entry_data(sim, *client_key)
    head = sim.nodes[0]
    first = _old_entry(data, "01JSPARKCONTROLMIGRATION01")
    twin_data = {
        **data,
        CONF_NODES: [head.host, *data[CONF_NODES][1:]],
        CONF_SSH_PORT: head.ssh_port,
        "host_keys": {head.host: head.host_public_key, **data["host_keys"]},
    }
    twin = _old_entry(twin_data, "01JSPARKCONTROLMIGRATION02")
    first.add_to_hass(hass)
    twin.add_to_hass(hass)
    assert await hass.config_entries.async_setup(first.entry_id)
    await hass.async_block_till_done()
    assert first.unique_id == fingerprint(head.host_public_key)
    assert twin.state is ConfigEntryState.LOADED
    assert twin.unique_id == head.host
    assert twin.minor_version == 2
    for entry in (first, twin):
        await hass.config_entries.async_unload(entry.entry_id)
