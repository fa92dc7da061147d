"""Add-on discovery end to end: the gateway's announcement links it in the real integration.

The gateway posts its discovery message to (a stand-in for) Supervisor; Home Assistant Core
then starts the integration's `hassio` flow with that message's config, which is done here
with the very payload the gateway sent. The integration, set up against the simulated cluster,
stores the URL and key and reloads (without an entity-less gateway device).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from unittest.mock import MagicMock

import aiohttp
import pytest
from homeassistant.config_entries import SOURCE_HASSIO, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spark_control.const import (
    CONF_GATEWAY_API_KEY,
    CONF_GATEWAY_URL,
    CONF_VOICE_BRIDGES,
    DOMAIN,
)
from spark_gateway.discovery import announce
from tests.gateway.conftest import FakeHomeAssistant, GatewayFactory
from tests.sim import SimCluster, SimConfig, generate_client_key
from tests.sim_entry import entry_identity, sim_entry_data


@pytest.fixture(autouse=True)
def _ha_harness(enable_custom_integrations: None, mock_async_zeroconf: MagicMock) -> None:
    """Load this repository's integration; zeroconf gets the harness's stand-in."""


@pytest.fixture(scope="module")
def client_key() -> tuple[str, str]:
    return generate_client_key("gateway-discovery-test")


@pytest.fixture
async def cluster(client_key: tuple[str, str]) -> AsyncIterator[SimCluster]:
    async with SimCluster(SimConfig(authorized_keys=[client_key[1]], load_seconds=0.1)) as sim:
        yield sim


def _entry(sim: SimCluster, client_key: tuple[str, str]) -> MockConfigEntry:
    data = sim_entry_data(sim, *client_key)
    return MockConfigEntry(
        domain=DOMAIN,
        title="Lab",
        **entry_identity(data),
        data=data,
        options={CONF_VOICE_BRIDGES: False},
    )


async def test_announced_gateway_is_linked(
    hass: HomeAssistant,
    cluster: SimCluster,
    client_key: tuple[str, str],
    start_gateway: GatewayFactory,
    fake_ha: FakeHomeAssistant,
) -> None:
    gateway = await start_gateway(api_keys=(), vllm_url=cluster.vllm.url)  # key generated
    entry = _entry(cluster, client_key)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    registry = dr.async_get(hass)
    assert not [
        d
        for d in dr.async_entries_for_config_entry(registry, entry.entry_id)
        if d.model and "gateway" in d.model
    ]

    async with aiohttp.ClientSession() as session:
        assert await announce(
            session,
            token=fake_ha.token,
            url=gateway.url,
            api_key=gateway.api_key,
            supervisor_url=fake_ha.url,
        )
    message = fake_ha.discoveries[0]
    assert message["service"] == DOMAIN
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_HASSIO},
        data=HassioServiceInfo(
            config=message["config"],
            name="Spark Control Gateway",
            slug="local_spark_gateway",
            uuid="d1c0ffee",
        ),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "gateway_linked"
    await hass.async_block_till_done()

    assert entry.data[CONF_GATEWAY_URL] == gateway.url
    assert entry.data[CONF_GATEWAY_API_KEY] == gateway.api_key
    assert entry.state is ConfigEntryState.LOADED  # reloaded with the link
    # No empty device for it: devices exist only where entities live (nodes and services).
    identifiers = {
        identifier
        for device in dr.async_entries_for_config_entry(registry, entry.entry_id)
        for _, identifier in device.identifiers
    }
    assert f"{entry.unique_id}_gateway" not in identifiers

    # The stored key really opens the gateway (what HA actions will use).
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{entry.data[CONF_GATEWAY_URL]}/v1/models",
            headers={"Authorization": f"Bearer {entry.data[CONF_GATEWAY_API_KEY]}"},
        ) as resp,
    ):
        assert resp.status == 200

    # Announcing the same again (every add-on start) changes nothing and reloads nothing.
    again = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_HASSIO},
        data=HassioServiceInfo(config=message["config"], name="g", slug="g", uuid="2"),
    )
    assert again["reason"] == "gateway_linked"
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
