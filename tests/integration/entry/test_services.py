"""Service-control and catalog actions, buttons and switches, and bad input to each."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from homeassistant.components.button import SERVICE_PRESS
from homeassistant.const import ATTR_ENTITY_ID, SERVICE_TURN_OFF, SERVICE_TURN_ON
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spark_control.const import DOMAIN
from tests.paths import REPO
from tests.sim import SimCluster

SELECT = "select.lab_vllm_model"


async def _call(hass: HomeAssistant, action: str, data: dict[str, Any]) -> Any:
    return await hass.services.async_call(
        DOMAIN,
        action,
        data,
        blocking=True,
        return_response=action in ("add_model",),
    )


async def test_stop_and_start_service(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """stop/start run docker on the service's node and the entities follow at once."""
    cluster = loaded_entry.entry_id
    await _call(hass, "stop_service", {"cluster": cluster, "service": "magpie"})
    await hass.async_block_till_done()
    assert "docker stop magpie-tts" in sim.nodes[1].commands
    assert not sim.containers["magpie-tts"].running
    assert hass.states.get("binary_sensor.lab_magpie_tts_connectivity").state == "off"  # type: ignore[union-attr]
    assert hass.states.get("switch.lab_magpie_tts_running").state == "off"  # type: ignore[union-attr]

    await _call(hass, "start_service", {"cluster": cluster, "service": "magpie"})
    assert sim.containers["magpie-tts"].running
    # The container needs a moment to boot (as the real one does); once it serves, the next
    # status poll finds it answering.
    await sim.magpie.wait_serving()
    await loaded_entry.runtime_data.status.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get("binary_sensor.lab_magpie_tts_connectivity").state == "on"  # type: ignore[union-attr]

    await _call(hass, "restart_service", {"cluster": cluster, "service": "parakeet"})
    assert "docker restart parakeet-asr" in sim.nodes[1].commands


async def test_button_and_switch(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """The restart button and the running switch drive the containers over SSH (vLLM's own
    start and restart: tests/integration/entry/test_vllm_lifecycle.py)."""
    await hass.services.async_call(
        "button", SERVICE_PRESS, {ATTR_ENTITY_ID: "button.lab_parakeet_asr_restart"}, blocking=True
    )
    assert "docker restart parakeet-asr" in sim.nodes[1].commands

    await hass.services.async_call(
        "switch", SERVICE_TURN_OFF, {ATTR_ENTITY_ID: "switch.lab_magpie_tts_running"}, blocking=True
    )
    await hass.async_block_till_done()
    assert "docker stop magpie-tts" in sim.nodes[1].commands
    assert hass.states.get("switch.lab_magpie_tts_running").state == "off"  # type: ignore[union-attr]

    await hass.services.async_call(
        "switch", SERVICE_TURN_ON, {ATTR_ENTITY_ID: "switch.lab_magpie_tts_running"}, blocking=True
    )
    await hass.async_block_till_done()
    assert "docker start magpie-tts" in sim.nodes[1].commands
    assert hass.states.get("switch.lab_magpie_tts_running").state == "on"  # type: ignore[union-attr]


async def test_catalog_actions_persist(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    sim: SimCluster,
    hass_storage: dict[str, Any],
) -> None:
    """add_model, set_model_options and remove_model change the select, HA storage and the
    launch flags, and survive a reload."""
    cluster = loaded_entry.entry_id
    added = await _call(
        hass,
        "add_model",
        {
            "cluster": cluster,
            "name": "Llama 3.1 8B",
            "repo_id": "meta-llama/Llama-3.1-8B-Instruct",
            "mode": "solo",
            "max_model_len": 16384.0,  # as the UI's number selector sends it
        },
    )
    assert added["key"] == "llama-3.1-8b"
    assert added["max_model_len"] == 16384
    assert "Llama 3.1 8B" in hass.states.get(SELECT).attributes["options"]  # type: ignore[union-attr]

    await _call(
        hass,
        "set_model_options",
        {"cluster": cluster, "model": "llama-3.1-8b", "fp8_kv_cache": True, "max_model_len": 8192},
    )
    # Stored as the model's config subentry (the catalog UI's home of it).
    (stored,) = loaded_entry.subentries.values()
    assert (stored.subentry_type, stored.unique_id, stored.title) == (
        "model",
        "llama-3.1-8b",
        "Llama 3.1 8B",
    )
    assert stored.data["model"]["repo_id"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert stored.data["options"] == {"max_model_len": 8192, "fp8_kv_cache": True}

    await hass.config_entries.async_reload(cluster)
    await hass.async_block_till_done()
    assert "Llama 3.1 8B" in hass.states.get(SELECT).attributes["options"]  # type: ignore[union-attr]

    await _call(hass, "swap_model", {"cluster": cluster, "model": "llama-3.1-8b", "wait": True})
    launch = [command for command in sim.nodes[0].commands if "vllm serve" in command][-1]
    assert "meta-llama/Llama-3.1-8B-Instruct" in launch
    assert "--max-model-len 8192" in launch
    assert "--kv-cache-dtype fp8" in launch
    assert hass.states.get(SELECT).state == "Llama 3.1 8B"  # type: ignore[union-attr]

    await _call(hass, "remove_model", {"cluster": cluster, "model": "llama-3.1-8b"})
    assert not loaded_entry.subentries
    # The served model is no longer in the catalog: it shows as its repo id, not as an error.
    await loaded_entry.runtime_data.status.async_refresh()
    await hass.async_block_till_done()
    state = hass.states.get(SELECT)
    assert state is not None
    assert state.state == "meta-llama/Llama-3.1-8B-Instruct"
    assert "meta-llama/Llama-3.1-8B-Instruct" in state.attributes["options"]
    with pytest.raises(ServiceValidationError) as error:
        await hass.services.async_call(
            "select",
            "select_option",
            {ATTR_ENTITY_ID: SELECT, "option": "meta-llama/Llama-3.1-8B-Instruct"},
            blocking=True,
        )
    assert error.value.translation_key == "model_not_in_catalog"


@pytest.mark.parametrize(
    ("action", "data", "translation_key", "field"),
    [
        ("swap_model", {"model": "no-such-model"}, "unknown_model", None),
        ("swap_model", {"model": "x; rm -rf /", "wait": True}, "unknown_model", None),
        ("restart_service", {"service": "sshd"}, "invalid_service", None),
        ("start_service", {"service": "$(reboot)"}, "invalid_service", None),
        (
            "add_model",
            {"name": "Evil", "repo_id": "a/b; rm -rf /", "mode": "solo"},
            "invalid_input",
            "repo_id",
        ),
        (
            "add_model",
            {"name": "Evil", "repo_id": "a/`id`", "mode": "solo"},
            "invalid_input",
            "repo_id",
        ),
        ("add_model", {"name": "X", "repo_id": "a/b", "mode": "swarm"}, "invalid_mode", None),
        # Checked as given: a trailing newline used to pass the check and be stored raw.
        ("add_model", {"name": "NL", "repo_id": "org/model\n"}, "invalid_input", "repo_id"),
        ("add_model", {"name": "Sp", "repo_id": " org/model"}, "invalid_input", "repo_id"),
        (
            "add_model",
            {"name": "Dup", "repo_id": "RedHatAI/Qwen3.6-35B-A3B-NVFP4"},
            "invalid_input",
            "repo_id",
        ),
        ("remove_model", {"model": "qwen36"}, "invalid_input", "model"),
        ("remove_model", {"model": "unknown"}, "invalid_input", "model"),
        (
            "set_model_options",
            {"model": "qwen36", "gpu_memory_utilization": 1.5},
            "invalid_input",
            "gpu_memory_utilization",
        ),
        (
            "set_model_options",
            {"model": "qwen36", "max_model_len": 10},
            "invalid_input",
            "max_model_len",
        ),
        (
            "set_model_options",
            {"model": "qwen36", "max_model_len": "lots"},
            "invalid_input",
            "max_model_len",
        ),
        (
            "set_model_options",
            {"model": "qwen36", "prefix_caching": "maybe"},
            "invalid_input",
            "prefix_caching",
        ),
        (
            "add_model",
            {"name": "X", "repo_id": "a/b", "gpu_memory_utilization": "most"},
            "invalid_input",
            "gpu_memory_utilization",
        ),
    ],
)
async def test_bad_input_is_refused(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    sim: SimCluster,
    action: str,
    data: dict[str, Any],
    translation_key: str,
    field: str | None,
) -> None:
    """Bad input raises a translated ServiceValidationError and sends nothing to a node."""
    before = [len(node.commands) for node in sim.nodes]
    with pytest.raises(ServiceValidationError) as error:
        await hass.services.async_call(
            DOMAIN,
            action,
            {"cluster": loaded_entry.entry_id, **data},
            blocking=True,
            return_response=action in ("add_model",) or data.get("wait") is True,
        )
    assert error.value.translation_domain == DOMAIN
    assert error.value.translation_key == translation_key
    if field is not None:
        assert error.value.translation_placeholders is not None
        assert error.value.translation_placeholders["field"] == field
    assert [len(node.commands) for node in sim.nodes] == before


async def test_unknown_model_lists_the_catalog(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """The error for a model not in the catalog names every model that can be loaded, in
    the message HA shows (translated, placeholders filled)."""
    with pytest.raises(ServiceValidationError) as error:
        await _call(hass, "swap_model", {"cluster": loaded_entry.entry_id, "model": "llama"})
    assert error.value.translation_key == "unknown_model"
    message = str(error.value)
    assert message.startswith("llama is not in the catalog of Lab.")
    for model in loaded_entry.runtime_data.catalog.catalog.models:
        assert f"{model.key} ({model.name})" in message


def test_swap_model_selector_offers_the_bundled_catalog() -> None:
    """services.yaml cannot be dynamic: its select lists the bundled keys (and takes a typed
    key for models the user added); each is named in the translations."""
    package = REPO / "custom_components/spark_control"
    selector = yaml.safe_load((package / "services.yaml").read_text())["swap_model"]["fields"][
        "model"
    ]["selector"]["select"]
    bundled = yaml.safe_load((package / "models.yaml").read_text())["models"]
    assert selector["options"] == [model["key"] for model in bundled]
    assert selector["custom_value"] is True
    names = json.loads((package / "translations/en.json").read_text())["selector"][
        selector["translation_key"]
    ]["options"]
    assert names == {model["key"]: model["name"] for model in bundled}


async def test_unknown_or_unloaded_cluster(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """Actions name a loaded Spark Control entry or fail with a clear error."""
    with pytest.raises(ServiceValidationError) as error:
        await _call(hass, "restart_service", {"cluster": "nope", "service": "vllm"})
    assert error.value.translation_key == "invalid_cluster"
    await hass.config_entries.async_unload(loaded_entry.entry_id)
    with pytest.raises(ServiceValidationError) as error:
        await _call(hass, "restart_service", {"cluster": loaded_entry.entry_id, "service": "vllm"})
    assert error.value.translation_key == "cluster_not_loaded"
