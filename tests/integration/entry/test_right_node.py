"""Service commands go to the node that hosts the service, whatever way its host is written;
a service on a host that is not a node is refused with a clear error, never sent to the head."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_socket
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spark_control.const import (
    CONF_ENDPOINTS,
    CONF_HOST_KEYS,
    CONF_NODES,
    CONF_VOICE_BRIDGES,
    DOMAIN,
)
from tests.sim import SimCluster
from tests.sim_entry import sim_entry_data


async def _setup(
    hass: HomeAssistant, sim: SimCluster, client_key: tuple[str, str], data: dict[str, Any]
) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN, title="Lab", data=data, options={CONF_VOICE_BRIDGES: False}
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def _restart_parakeet(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    await hass.services.async_call(
        DOMAIN,
        "restart_service",
        {"cluster": entry.entry_id, "service": "parakeet"},
        blocking=True,
    )


def _docker_restarts(sim: SimCluster) -> list[list[str]]:
    return [
        [command for command in node.commands if command.startswith("docker restart")]
        for node in sim.nodes
    ]


async def test_node_given_by_name_and_service_by_ip(
    hass: HomeAssistant, sim: SimCluster, client_key: tuple[str, str]
) -> None:
    """The nodes are written as host names (localhost:port), the services by IP
    (127.0.0.1): matched by address, so Parakeet's restart goes to its node, not the head."""
    data = sim_entry_data(sim, *client_key)
    renamed = {node: node.replace("127.0.0.1", "localhost") for node in data[CONF_NODES]}
    data[CONF_NODES] = list(renamed.values())
    data[CONF_HOST_KEYS] = {renamed[node]: key for node, key in data[CONF_HOST_KEYS].items()}
    entry = await _setup(hass, sim, client_key, data)
    await _restart_parakeet(hass, entry)
    assert _docker_restarts(sim) == [[], ["docker restart parakeet-asr"]]
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_service_on_a_host_that_is_no_node(
    hass: HomeAssistant,
    sim: SimCluster,
    client_key: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # TEST-NET-1: no node there. The status poll may try it (and find nothing).
    pytest_socket.socket_allow_hosts(["127.0.0.1", "192.0.2.7"])
    data = sim_entry_data(sim, *client_key)
    data[CONF_ENDPOINTS]["parakeet"]["host"] = "192.0.2.7"
    entry = await _setup(hass, sim, client_key, data)
    assert "parakeet runs on 192.0.2.7, which is not one of the SSH nodes" in caplog.text
    with pytest.raises(HomeAssistantError) as err:
        await _restart_parakeet(hass, entry)
    assert err.value.translation_key == "service_not_on_node"
    assert err.value.translation_placeholders == {"service": "parakeet", "host": "192.0.2.7"}
    assert _docker_restarts(sim) == [[], []]  # nothing went to the head (or anywhere)
    # Other services still work.
    await hass.services.async_call(
        DOMAIN,
        "restart_service",
        {"cluster": entry.entry_id, "service": "magpie"},
        blocking=True,
    )
    assert _docker_restarts(sim) == [[], ["docker restart magpie-tts"]]
    assert await hass.config_entries.async_unload(entry.entry_id)
