"""Downloading a model from the catalog UI: the *Add model* subentry flow asks the nodes what
`hf download --dry-run` would fetch and, when weights are missing, downloads them (disk checked,
progress in the dialog and on the download sensors) before the model enters the catalog —
through HA's real flow manager against the simulator over real SSH."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from homeassistant.components.repairs import DOMAIN as REPAIRS_DOMAIN
from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.data_entry_flow import (
    EVENT_DATA_ENTRY_FLOW_PROGRESS_UPDATE,
    FlowResultType,
)
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spark_control.const import DOMAIN
from custom_components.spark_control.download_control import downloaded_issue_id, failed_issue_id
from tests.paths import REPO
from tests.sim import SimCluster, SimConfig
from tests.sim_entry import node_strings

EN = json.loads((REPO / "custom_components/spark_control/translations/en.json").read_text())

GB = 1_000_000_000
NEW_REPO = "org/new-model"
CACHED_REPO = "org/cached-model"
HUGE_REPO = "org/huge-model"
PROGRESS = "sensor.lab_vllm_model_download_progress"
STATUS = "sensor.lab_vllm_model_download"


@pytest.fixture
def sim_config(sim_config: SimConfig) -> SimConfig:
    """The suite's cluster with model sizes, one model already cached and room for downloads."""
    return replace(
        sim_config,
        model_bytes={NEW_REPO: 12 * GB, CACHED_REPO: 8 * GB, HUGE_REPO: 900 * GB},
        cached_models=(CACHED_REPO,),
        disk_free_bytes=200 * GB,
        download_seconds=0.4,
    )


def _model(repo_id: str, name: str, mode: str = "solo") -> dict[str, Any]:
    return {
        "name": name,
        "repo_id": repo_id,
        "mode": mode,
        "tensor_parallel": 1 if mode == "solo" else 2,
        "max_model_len": 16384,
        "gpu_memory_utilization": 0.6,
        "fastsafetensors": False,
        "prefix_caching": True,
        "fp8_kv_cache": False,
        "extra_args": [],
    }


async def _model_form(hass: HomeAssistant, entry: MockConfigEntry, step: str) -> dict[str, Any]:
    flows = hass.config_entries.subentries
    menu = await flows.async_init((entry.entry_id, "model"), context={"source": SOURCE_USER})
    assert menu["type"] is FlowResultType.MENU
    return dict(await flows.async_configure(menu["flow_id"], {"next_step_id": step}))


def _downloads(sim: SimCluster) -> list[str]:
    """The real (not dry-run) downloads sent to any node."""
    return [
        command
        for node in sim.nodes
        for command in node.commands
        if "hf download" in command and "--dry-run" not in command
    ]


def _flow_progress(hass: HomeAssistant) -> list[float]:
    seen: list[float] = []

    @callback
    def record(event: Event) -> None:
        seen.append(event.data["progress"])

    hass.bus.async_listen(EVENT_DATA_ENTRY_FLOW_PROGRESS_UPDATE, record)
    return seen


def _catalog_keys(entry: MockConfigEntry) -> set[str]:
    return {model.key for model in entry.runtime_data.catalog.catalog.models}


async def test_add_model_downloads_its_missing_weights_first(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """Size and free space shown, progress in the dialog and on the sensor, the subentry
    created when the weights are complete; nothing in the catalog before."""
    assert await async_setup_component(hass, REPAIRS_DOMAIN, {})
    flows = hass.config_entries.subentries
    head = node_strings(sim)[0]
    form = await _model_form(hass, loaded_entry, "new_model")
    offer = await flows.async_configure(form["flow_id"], _model(NEW_REPO, "New Model"))
    assert offer["type"] is FlowResultType.FORM
    assert offer["step_id"] == "download"
    assert offer["description_placeholders"]["size"] == "12.0 GB"
    assert offer["description_placeholders"]["nodes"] == head  # solo: the head alone
    assert offer["description_placeholders"]["free"] == f"{head}: 192.0 GB"  # 8 GB cached
    assert sim.nodes[0].commands.count(f"hf download {NEW_REPO} --dry-run") == 1
    assert _downloads(sim) == []
    assert "new-model" not in _catalog_keys(loaded_entry)

    progress = _flow_progress(hass)
    readings: list[dict[str, Any]] = []

    @callback
    def record(event: Event) -> None:
        if event.data["entity_id"] == PROGRESS and event.data["new_state"] is not None:
            readings.append(dict(event.data["new_state"].attributes))

    hass.bus.async_listen("state_changed", record)
    events: list[str] = []

    @callback
    def record_event(event: Event) -> None:
        events.append(event.event_type)

    for name in ("download_started", "download_finished", "download_failed"):
        hass.bus.async_listen(f"{DOMAIN}_{name}", record_event)
    running = await flows.async_configure(offer["flow_id"], {"download": True})
    assert running["type"] is FlowResultType.SHOW_PROGRESS
    assert running["step_id"] == "downloading"
    assert running["progress_action"] == "download"
    # HA's frontend renders a progress step's title without the step's placeholders (only its
    # description gets them): on the demo's HA 2026.11 "Downloading {repo_id}" showed as
    # "Translation [formatjs Error: MISSING_VALUE] ...". The repo id is in the description.
    texts = EN["config_subentries"]["model"]
    assert "{" not in texts["step"]["downloading"].get("title", "")
    assert "{repo_id}" in texts["progress"]["download"]
    assert hass.states.get(STATUS).state in ("downloading", "finished")  # type: ignore[union-attr]
    await hass.async_block_till_done()

    done = await flows.async_configure(offer["flow_id"])
    assert done["type"] is FlowResultType.CREATE_ENTRY
    assert done["title"] == "New Model"
    await hass.async_block_till_done()
    assert _downloads(sim) == [f"env TQDM_POSITION=-1 hf download {NEW_REPO}"]
    assert sim.world.storage[0].hf_cache[NEW_REPO].complete
    assert NEW_REPO not in sim.world.storage[1].hf_cache
    assert progress == sorted(progress)
    assert len(progress) > 3
    assert progress[-1] == 1.0
    assert hass.states.get(PROGRESS).state == "100"  # type: ignore[union-attr]
    # Bytes, rate and time left as the hub's progress bar printed them on the node.
    midway = next(r for r in readings if r["downloaded_bytes"] and r["eta_seconds"])
    assert midway["total_bytes"] == 12 * GB
    assert 0 < midway["downloaded_bytes"] < 12 * GB
    assert midway["rate_bytes_per_second"] == 140e6
    assert midway["eta_seconds"] == pytest.approx(
        (12 * GB - midway["downloaded_bytes"]) / 140e6, abs=2
    )
    assert readings[-1]["eta_seconds"] == 0
    # The same events as the download_model action's, for automations.
    assert events == [f"{DOMAIN}_download_started", f"{DOMAIN}_download_finished"]
    model = loaded_entry.runtime_data.catalog.catalog.get("new-model")
    assert (model.repo_id, model.max_model_len) == (NEW_REPO, 16384)
    # The flow added it: no second offer waits in Repairs.
    issue = downloaded_issue_id(loaded_entry.entry_id, NEW_REPO)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue) is None


async def test_weights_already_on_the_node_add_at_once(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    flows = hass.config_entries.subentries
    form = await _model_form(hass, loaded_entry, "new_model")
    done = await flows.async_configure(form["flow_id"], _model(CACHED_REPO, "Cached"))
    assert done["type"] is FlowResultType.CREATE_ENTRY
    assert sim.nodes[0].commands.count(f"hf download {CACHED_REPO} --dry-run") == 1
    assert _downloads(sim) == []
    await hass.async_block_till_done()
    assert "cached" in _catalog_keys(loaded_entry)


async def _adjust_bundled(
    hass: HomeAssistant, entry: MockConfigEntry, model: str, **changes: object
) -> Any:
    """Submit a bundled model's adjustment form with its suggested values and `changes`."""
    flows = hass.config_entries.subentries
    pick = await _model_form(hass, entry, "bundled_model")
    form = await flows.async_configure(pick["flow_id"], {"model": model})
    suggested = {
        str(key): key.description["suggested_value"]  # type: ignore[index]
        for key in form["data_schema"].schema
    }
    return await flows.async_configure(form["flow_id"], {**suggested, **changes})


async def test_a_cluster_model_downloads_to_every_node(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """Adjusting a bundled cluster model whose weights are missing offers them for every
    node; the adjustment is saved once both nodes have them."""
    flows = hass.config_entries.subentries
    bundled = loaded_entry.runtime_data.catalog.catalog.get("qwen2.5-72b")
    offer = await _adjust_bundled(hass, loaded_entry, "qwen2.5-72b", max_model_len=8192)
    assert offer["step_id"] == "download"
    assert offer["description_placeholders"]["nodes"] == ", ".join(node_strings(sim))
    assert offer["description_placeholders"]["size"] == "21.3 GB"  # the sim's default size
    await flows.async_configure(offer["flow_id"], {"download": True})
    await hass.async_block_till_done()
    done = await flows.async_configure(offer["flow_id"])
    assert done["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert all(storage.hf_cache[bundled.repo_id].complete for storage in sim.world.storage)
    assert loaded_entry.runtime_data.catalog.catalog.get("qwen2.5-72b").max_model_len == 8192


async def test_a_size_the_hub_does_not_fully_know_is_offered_as_a_floor(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """huggingface_hub 2.x's dry run says "an unknown size": the offer shows the sizes it
    gave as "at least" (never "0.0 GB", never the model added as if its weights were there),
    and the download fetches them all."""
    sim.faults.hide_a_file_size()
    flows = hass.config_entries.subentries
    bundled = loaded_entry.runtime_data.catalog.catalog.get("qwen2.5-72b")
    offer = await _adjust_bundled(hass, loaded_entry, "qwen2.5-72b")
    assert offer["step_id"] == "download"
    size = offer["description_placeholders"]["size"]
    assert size.startswith("≥ ")
    assert 0 < float(size.removeprefix("≥ ").removesuffix(" GB")) < 21.3
    await flows.async_configure(offer["flow_id"], {"download": True})
    await hass.async_block_till_done()
    done = await flows.async_configure(offer["flow_id"])
    assert done["type"] is FlowResultType.CREATE_ENTRY
    assert all(storage.hf_cache[bundled.repo_id].complete for storage in sim.world.storage)


async def test_too_little_disk_is_an_error_in_the_form(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """The disk check's error is shown in the download form; no byte moves; the model can
    still be added without its weights."""
    flows = hass.config_entries.subentries
    form = await _model_form(hass, loaded_entry, "new_model")
    offer = await flows.async_configure(form["flow_id"], _model(HUGE_REPO, "Huge"))
    assert offer["step_id"] == "download"
    assert offer["errors"] == {"base": "insufficient_disk"}
    assert "the download needs 902.0 GB" in offer["description_placeholders"]["error"]
    again = await flows.async_configure(offer["flow_id"], {"download": True})
    assert again["step_id"] == "download"
    assert again["errors"] == {"base": "insufficient_disk"}
    assert _downloads(sim) == []
    assert HUGE_REPO not in sim.world.storage[0].hf_cache
    assert "huge" not in _catalog_keys(loaded_entry)

    added = await flows.async_configure(offer["flow_id"], {"download": False})
    assert added["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert "huge" in _catalog_keys(loaded_entry)
    assert _downloads(sim) == []


async def test_a_repo_the_hub_does_not_know_is_an_error_on_the_model_form(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    flows = hass.config_entries.subentries
    form = await _model_form(hass, loaded_entry, "new_model")
    missing = await flows.async_configure(
        form["flow_id"], _model("nonexistent-org/missing-model", "Missing")
    )
    assert missing["step_id"] == "new_model"
    assert missing["errors"] == {"repo_id": "weights_check_failed"}
    assert missing["description_placeholders"]["error"].startswith("Repository Not Found")
    # A repo id that is not one is refused before any command is sent.
    sent = len(sim.nodes[0].commands)
    bad = await flows.async_configure(form["flow_id"], _model("org/x; rm -rf ~", "Bad"))
    assert bad["errors"] == {"repo_id": "invalid_model"}
    assert len(sim.nodes[0].commands) == sent
    assert not any("missing" in key for key in _catalog_keys(loaded_entry))


async def test_failed_download_adds_nothing_and_offers_resume(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    assert await async_setup_component(hass, REPAIRS_DOMAIN, {})
    flows = hass.config_entries.subentries
    sim.faults.fail_downloads_at(0.5)
    form = await _model_form(hass, loaded_entry, "new_model")
    offer = await flows.async_configure(form["flow_id"], _model(NEW_REPO, "New Model"))
    await flows.async_configure(offer["flow_id"], {"download": True})
    await hass.async_block_till_done()
    failed = await flows.async_configure(offer["flow_id"])
    assert failed["type"] is FlowResultType.ABORT
    assert failed["reason"] == "download_failed"
    assert "RemoteProtocolError" in failed["description_placeholders"]["error"]
    assert "new-model" not in _catalog_keys(loaded_entry)
    assert not loaded_entry.subentries
    issue = failed_issue_id(loaded_entry.entry_id, NEW_REPO)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue) is not None


async def test_closing_the_dialog_leaves_the_download_running(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """The download outlives its dialog; a second flow meanwhile is told one runs; the
    finished download then offers itself in Repairs instead of joining the catalog."""
    assert await async_setup_component(hass, REPAIRS_DOMAIN, {})
    flows = hass.config_entries.subentries
    form = await _model_form(hass, loaded_entry, "new_model")
    offer = await flows.async_configure(form["flow_id"], _model(NEW_REPO, "New Model"))
    running = await flows.async_configure(offer["flow_id"], {"download": True})
    assert running["type"] is FlowResultType.SHOW_PROGRESS
    flows.async_abort(offer["flow_id"])  # what closing the dialog does

    other = await _model_form(hass, loaded_entry, "new_model")
    second = await flows.async_configure(other["flow_id"], _model("org/other-model", "Other"))
    assert second["step_id"] == "download"
    refused = await flows.async_configure(other["flow_id"], {"download": True})
    assert refused["errors"] == {"base": "download_in_progress"}
    assert refused["description_placeholders"]["error"] == NEW_REPO
    flows.async_abort(other["flow_id"])

    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get(STATUS).state == "finished"  # type: ignore[union-attr]
    assert sim.world.storage[0].hf_cache[NEW_REPO].complete
    assert "new-model" not in _catalog_keys(loaded_entry)
    issue = downloaded_issue_id(loaded_entry.entry_id, NEW_REPO)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue) is not None


async def test_a_failed_check_of_a_bundled_model_is_an_error_on_its_form(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """The hub refusing a bundled model's repo (gated, renamed) keeps the adjustment form open
    with the reason; nothing is saved."""
    flows = hass.config_entries.subentries
    gemma = loaded_entry.runtime_data.catalog.catalog.get("gemma4")
    sim.world.config.missing_repos = (gemma.repo_id,)
    pick = await _model_form(hass, loaded_entry, "bundled_model")
    form = await flows.async_configure(pick["flow_id"], {"model": "gemma4"})
    suggested = {
        str(key): key.description["suggested_value"]  # type: ignore[index]
        for key in form["data_schema"].schema
    }
    refused = await flows.async_configure(form["flow_id"], {**suggested, "max_model_len": 8192})
    assert refused["step_id"] == "bundled_options"
    assert refused["errors"] == {"base": "weights_check_failed"}
    assert refused["description_placeholders"]["error"].startswith("Repository Not Found")
    assert not loaded_entry.subentries
