"""A one-node cluster: every service defaults to the head node and hangs off its device."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spark_control.const import CONF_PRIVATE_KEY, DOMAIN
from tests.sim import SimCluster, SimConfig


@pytest.fixture
def sim_config(client_key: tuple[str, str]) -> SimConfig:
    """One node running vLLM, Parakeet and Magpie."""
    return SimConfig(nodes=1, authorized_keys=[client_key[1]], load_seconds=0.2)


async def test_flow_suggests_the_head_for_everything(
    hass: HomeAssistant, sim: SimCluster, client_key: tuple[str, str]
) -> None:
    """With one node the suggested endpoints are all on it."""
    result: Any = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            "cluster_name": "Solo",
            "nodes": f"localhost:{sim.nodes[0].ssh_port}",
            "ssh_user": sim.config.username,
            "ssh_port": 22,
            "repo_path": "~/spark-vllm-docker",
            "key_source": "paste",
        },
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PRIVATE_KEY: client_key[0]}
    )
    assert result["type"] is FlowResultType.FORM
    suggested = {
        str(key): key.description["suggested_value"]
        for key in result["data_schema"].schema
        if str(key) in ("vllm", "parakeet", "magpie")
    }
    assert suggested == {
        "vllm": "localhost:8888",
        "parakeet": "localhost:8000",
        "magpie": "localhost:9000",
    }


async def test_services_hang_off_the_head(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """Every service device is linked through the only node; restarts go to it."""
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), loaded_entry.entry_id)
    head_name = "spark-1"  # the host name the node reports
    head = next(d for d in devices if d.name == head_name)
    services = [d for d in devices if d.via_device_id == head.id]
    assert sorted(d.name or "" for d in services) == [
        "Lab Magpie TTS",
        "Lab Parakeet ASR",
        "Lab vLLM",
    ]
    await hass.services.async_call(
        DOMAIN,
        "restart_service",
        {"cluster": loaded_entry.entry_id, "service": "magpie"},
        blocking=True,
    )
    assert "docker restart magpie-tts" in sim.nodes[0].commands
