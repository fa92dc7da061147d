"""Catalog keys as model names: the gateway asks the real Home Assistant for the model select.

Home Assistant runs with the integration set up against the simulated cluster and its REST API
served on loopback; the gateway renders its template there with a real access token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from unittest.mock import MagicMock

import openai
import pytest
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from openai import AsyncOpenAI
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.spark_control.const import CONF_VOICE_BRIDGES, DOMAIN
from spark_gateway.catalog_names import CatalogNames
from spark_gateway.chat_models import CURRENT
from tests.gateway.conftest import GatewayFactory
from tests.sim import SimCluster, SimConfig, generate_client_key
from tests.sim_entry import entry_identity, sim_entry_data

LOADED_KEY = "qwen36"  # the bundled catalog's key for the simulator's default model


@pytest.fixture(autouse=True)
def _ha_harness(enable_custom_integrations: None, mock_async_zeroconf: MagicMock) -> None:
    """Load this repository's integration; zeroconf gets the harness's stand-in."""


@pytest.fixture(scope="module")
def client_key() -> tuple[str, str]:
    return generate_client_key("gateway-catalog-test")


@pytest.fixture
async def cluster(client_key: tuple[str, str]) -> AsyncIterator[SimCluster]:
    async with SimCluster(SimConfig(authorized_keys=[client_key[1]], load_seconds=0.1)) as sim:
        yield sim


@pytest.fixture
async def ha_api(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    cluster: SimCluster,
    client_key: tuple[str, str],
) -> str:
    """Home Assistant's REST API URL, with Spark Control loaded for the simulated cluster."""
    assert await async_setup_component(hass, "http", {})
    assert await async_setup_component(hass, "api", {})
    data = sim_entry_data(cluster, *client_key)
    entry = MockConfigEntry(
        domain=DOMAIN, title="Lab", **entry_identity(data), data=data,
        options={CONF_VOICE_BRIDGES: False},
    )  # fmt: skip
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    client = await hass_client()
    return str(client.make_url("/api")).rstrip("/")


async def test_catalog_key_names_the_loaded_model(
    hass: HomeAssistant,
    ha_api: str,
    hass_access_token: str,
    cluster: SimCluster,
    start_gateway: GatewayFactory,
) -> None:
    (select,) = hass.states.async_all("select")
    assert select.attributes["catalog_key"] == LOADED_KEY  # what the gateway will read
    gateway = await start_gateway(
        vllm_url=cluster.vllm.url, ha_url=ha_api, ha_token=hass_access_token
    )
    async with AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=gateway.api_key, max_retries=0
    ) as client:
        ids = [m.id for m in (await client.models.list()).data]
        assert ids == [cluster.config.served_model, CURRENT, LOADED_KEY]
        reply = await client.chat.completions.create(
            model=LOADED_KEY, messages=[{"role": "user", "content": "hi"}], max_tokens=3
        )
        assert reply.model == cluster.config.served_model
        with pytest.raises(openai.NotFoundError) as info:
            await client.chat.completions.create(
                model="gemma4", messages=[{"role": "user", "content": "hi"}], max_tokens=3
            )
        assert info.value.body["code"] == "model_not_loaded"  # type: ignore[index]


async def test_several_selects_need_the_entity_named(
    hass: HomeAssistant, ha_api: str, hass_access_token: str, start_gateway: GatewayFactory
) -> None:
    """The template's answer is read as HA renders it; a named entity is taken as is."""
    gateway = await start_gateway(ha_url=ha_api, ha_token=hass_access_token)
    from spark_gateway.appkeys import SESSION

    session = gateway.app[SESSION]
    (select,) = [s.entity_id for s in hass.states.async_all("select")]
    named = CatalogNames(session, ha_api, hass_access_token, entity_id=select)
    assert await named.loaded_key() == LOADED_KEY
    wrong = CatalogNames(session, ha_api, hass_access_token, entity_id="select.other_model")
    assert await wrong.loaded_key() is None
    refused = CatalogNames(session, ha_api, "not-a-token")
    assert await refused.loaded_key() is None
