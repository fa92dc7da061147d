"""The model catalog in the UI: config subentries add, adjust, edit and remove models; the
select and the launch command follow; bundled models stay; a catalog stored by an older version
moves into subentries."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spark_control.const import DOMAIN
from tests.sim import SimCluster, SimConfig

SELECT = "select.lab_vllm_model"
NEW_MODEL = {
    "name": "Llama 3.1 8B",
    "repo_id": "meta-llama/Llama-3.1-8B-Instruct",
    "mode": "solo",
    "tensor_parallel": 1,
    "max_model_len": 16384,
    "gpu_memory_utilization": 0.6,
    "fastsafetensors": True,
    "prefix_caching": True,
    "fp8_kv_cache": False,
    "extra_args": ["--enable-auto-tool-choice", "--tool-call-parser=hermes"],
}


@pytest.fixture
def sim_config(client_key: tuple[str, str]) -> SimConfig:
    """The weights of the models these tests add are on the nodes already (downloading the
    missing ones from the same flow: test_catalog_download.py)."""
    return SimConfig(
        nodes=2,
        authorized_keys=[client_key[1]],
        load_seconds=0.4,
        cached_models=(str(NEW_MODEL["repo_id"]), "google/gemma-4-27b-it"),
    )


def _options(hass: HomeAssistant) -> list[str]:
    state = hass.states.get(SELECT)
    assert state is not None
    return list(state.attributes["options"])


async def _start(hass: HomeAssistant, entry: MockConfigEntry, step: str) -> dict[str, Any]:
    flows = hass.config_entries.subentries
    result = await flows.async_init((entry.entry_id, "model"), context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.MENU
    return dict(await flows.async_configure(result["flow_id"], {"next_step_id": step}))


async def test_add_edit_and_remove_a_model(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    flows = hass.config_entries.subentries
    form = await _start(hass, loaded_entry, "new_model")
    assert form["step_id"] == "new_model"
    bad = await flows.async_configure(form["flow_id"], {**NEW_MODEL, "tensor_parallel": 2})
    assert bad["errors"] == {"tensor_parallel": "invalid_model"}  # solo runs with -tp 1
    clash = await flows.async_configure(
        form["flow_id"], {**NEW_MODEL, "repo_id": "RedHatAI/Qwen3.6-35B-A3B-NVFP4"}
    )
    assert clash["errors"] == {"repo_id": "invalid_model"}  # bundled qwen36 has it
    assert "Llama 3.1 8B" not in _options(hass)
    done = await flows.async_configure(form["flow_id"], NEW_MODEL)
    assert done["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    (subentry,) = loaded_entry.subentries.values()
    assert (subentry.unique_id, subentry.title) == ("llama-3.1-8b", "Llama 3.1 8B")
    assert "Llama 3.1 8B" in _options(hass)  # the select follows at once

    # Edit: the form shows the current settings; the next swap uses the new ones.
    edit = await flows.async_init(
        (loaded_entry.entry_id, "model"),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry.subentry_id},
    )
    suggested = {
        str(key): key.description["suggested_value"]  # type: ignore[index]
        for key in edit["data_schema"].schema
    }
    assert suggested["max_model_len"] == 16384
    assert suggested["extra_args"] == NEW_MODEL["extra_args"]
    saved = await flows.async_configure(
        edit["flow_id"], {**suggested, "max_model_len": 8192, "fp8_kv_cache": True}
    )
    assert saved["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    await hass.services.async_call(
        DOMAIN,
        "swap_model",
        {"cluster": loaded_entry.entry_id, "model": "llama-3.1-8b", "wait": True},
        blocking=True,
    )
    launch = [command for command in sim.nodes[0].commands if "vllm serve" in command][-1]
    assert "--max-model-len 8192" in launch
    assert "--kv-cache-dtype fp8" in launch
    assert launch.endswith("--enable-auto-tool-choice --tool-call-parser=hermes")

    # Survives a reload; removing the subentry removes the model.
    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert "Llama 3.1 8B" in _options(hass)
    assert hass.config_entries.async_remove_subentry(loaded_entry, subentry.subentry_id)
    await hass.async_block_till_done()
    assert "Llama 3.1 8B" not in _options(hass)
    assert "Gemma 4 27B Instruct" in _options(hass)  # bundled ones stay


async def test_adjust_a_bundled_model(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    flows = hass.config_entries.subentries
    pick = await _start(hass, loaded_entry, "bundled_model")
    form = await flows.async_configure(pick["flow_id"], {"model": "gemma4"})
    assert form["step_id"] == "bundled_options"
    suggested = {
        str(key): key.description["suggested_value"]  # type: ignore[index]
        for key in form["data_schema"].schema
    }
    assert suggested["max_model_len"] == 32768  # the shipped value is shown
    done = await flows.async_configure(form["flow_id"], {**suggested, "max_model_len": 65536})
    assert done["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    (subentry,) = loaded_entry.subentries.values()
    assert dict(subentry.data) == {"options": {"max_model_len": 65536}}  # only the change
    catalog = loaded_entry.runtime_data.catalog.catalog
    assert catalog.get("gemma4").max_model_len == 65536
    # Deleting the adjustment returns the bundled model to its shipped settings.
    hass.config_entries.async_remove_subentry(loaded_entry, subentry.subentry_id)
    await hass.async_block_till_done()
    assert loaded_entry.runtime_data.catalog.catalog.get("gemma4").max_model_len == 32768


async def test_actions_write_subentries(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    await hass.services.async_call(
        DOMAIN,
        "set_model_options",
        {"cluster": loaded_entry.entry_id, "model": "qwen36", "fp8_kv_cache": True},
        blocking=True,
    )
    (subentry,) = loaded_entry.subentries.values()
    assert subentry.unique_id == "qwen36"
    assert subentry.data["options"] == {"fp8_kv_cache": True}


@pytest.fixture
def hass_storage_catalog(
    hass_storage: dict[str, Any], config_entry: MockConfigEntry
) -> dict[str, Any]:
    """A catalog stored by an earlier version in HA's storage."""
    hass_storage[f"{DOMAIN}.{config_entry.entry_id}.catalog"] = {
        "version": 1,
        "key": f"{DOMAIN}.{config_entry.entry_id}.catalog",
        "data": {
            "version": 1,
            "user_models": [
                {
                    "key": "tiny",
                    "name": "Tiny",
                    "repo_id": "org/tiny-model",
                    "mode": "solo",
                    "tensor_parallel": 1,
                    "max_model_len": 4096,
                    "gpu_memory_utilization": 0.5,
                    "fastsafetensors": False,
                    "prefix_caching": True,
                    "fp8_kv_cache": False,
                    "port": 8888,
                }
            ],
            "overrides": {"gemma4": {"prefix_caching": False}},
        },
    }
    return hass_storage


async def test_stored_catalog_moves_into_subentries(
    hass: HomeAssistant,
    hass_storage_catalog: dict[str, Any],
    config_entry: MockConfigEntry,
) -> None:
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    by_key = {sub.unique_id: sub for sub in config_entry.subentries.values()}
    assert set(by_key) == {"tiny", "gemma4"}
    assert by_key["tiny"].data["model"]["max_model_len"] == 4096
    assert by_key["gemma4"].data == {"options": {"prefix_caching": False}}
    assert f"{DOMAIN}.{config_entry.entry_id}.catalog" not in hass_storage_catalog
    assert "Tiny" in _options(hass)
    assert await hass.config_entries.async_unload(config_entry.entry_id)
