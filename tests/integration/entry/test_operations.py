"""Model downloads and the spark-vllm-docker update from Home Assistant, against the simulator
over real SSH: actions, entities, events, repair fix flows and failure paths."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from homeassistant.components.repairs import DOMAIN as REPAIRS_DOMAIN
from homeassistant.components.repairs.issue_handler import RepairsFlowManager
from homeassistant.components.update import DOMAIN as UPDATE_DOMAIN, SERVICE_INSTALL
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import Event, HomeAssistant, State, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.spark_control.const import DOMAIN
from custom_components.spark_control.disk_space import DISK_SPACE_INTERVAL
from custom_components.spark_control.download_control import downloaded_issue_id, failed_issue_id
from custom_components.spark_control.software_update import UPDATE_CHECK_INTERVAL
from tests.ha_entry import async_wait_until
from tests.sim import SimCluster, SimConfig
from tests.sim_entry import node_strings

GB = 1_000_000_000
REPO = "org/small-model"
# Download entities sit on the vLLM device ("Lab vLLM"); the update entity on the head node,
# named by the host name it reports.
PROGRESS = "sensor.lab_vllm_model_download_progress"
STATUS = "sensor.lab_vllm_model_download"
CANCEL = "button.lab_vllm_cancel_model_download"
UPDATE = "update.spark_1_spark_vllm_docker"


@pytest.fixture
def sim_config(sim_config: SimConfig) -> SimConfig:
    """The suite's cluster with model sizes, disk room and quick downloads and builds."""
    return replace(
        sim_config,
        model_bytes={REPO: 12 * GB, "org/huge": 900 * GB},
        disk_free_bytes=200 * GB,
        download_seconds=0.3,
        build_seconds=0.3,
    )


def _state(hass: HomeAssistant, entity_id: str) -> State:
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state


def _disk_entity(hass: HomeAssistant, entry: MockConfigEntry, node: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{entry.unique_id}_{node}_disk_free"
    )
    assert entity_id is not None
    return entity_id


def _events(hass: HomeAssistant, *names: str) -> list[Event]:
    seen: list[Event] = []

    @callback
    def record(event: Event) -> None:  # a callback runs in order, in the loop
        seen.append(event)

    for name in names:
        hass.bus.async_listen(f"{DOMAIN}_{name}", record)
    return seen


def _fix_flows(hass: HomeAssistant) -> RepairsFlowManager:
    manager: RepairsFlowManager = hass.data[REPAIRS_DOMAIN]["flow_manager"]
    return manager


async def _download(hass: HomeAssistant, entry: MockConfigEntry, **data: Any) -> Any:
    return await hass.services.async_call(
        DOMAIN,
        "download_model",
        {"cluster": entry.entry_id, **data},
        blocking=True,
        return_response=True,
    )


async def test_download_to_every_node_then_add_to_catalog(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """Disk checked, progress on the sensor, events, disks shrink, the fix flow adds the
    model pre-filled; nothing enters the catalog before the user submits."""
    assert await async_setup_component(hass, REPAIRS_DOMAIN, {})
    nodes = node_strings(sim)
    disk = _disk_entity(hass, loaded_entry, nodes[1])
    assert float(_state(hass, disk).state) == pytest.approx(200.0)  # GB, suggested unit
    assert _state(hass, STATUS).state == "idle"
    assert _state(hass, CANCEL).state == "unavailable"
    events = _events(hass, "download_started", "download_finished", "download_failed")
    percents: list[str] = []

    @callback
    def record(event: Event) -> None:
        if event.data["entity_id"] == PROGRESS:
            percents.append(event.data["new_state"].state)

    hass.bus.async_listen("state_changed", record)

    response = await _download(hass, loaded_entry, repo_id=REPO, target="all", wait=True)
    await hass.async_block_till_done()

    assert response == {"repo_id": REPO, "status": "finished", "nodes": nodes, "bytes": 24 * GB}
    assert sim.nodes[0].commands.count(f"hf download {REPO} --dry-run") == 1
    assert "df --output=size,avail -B1 ." in sim.nodes[1].commands
    assert [event.event_type for event in events] == [
        f"{DOMAIN}_download_started",
        f"{DOMAIN}_download_finished",
    ]
    assert events[0].data["bytes_needed"] == 24 * GB
    assert events[0].data["nodes"] == nodes
    assert set(events[1].data["snapshots"]) == set(nodes)
    progress = _state(hass, PROGRESS)
    assert progress.state == "100"
    assert progress.attributes["downloaded_bytes"] == 24 * GB
    assert progress.attributes["rate_bytes_per_second"] == 280e6  # two nodes at 140 MB/s
    assert len(percents) > 5
    assert [int(p) for p in percents if p not in ("unknown", "unavailable")] == sorted(
        int(p) for p in percents if p not in ("unknown", "unavailable")
    )
    assert _state(hass, STATUS).state == "finished"
    assert float(_state(hass, disk).state) == pytest.approx(188.0)

    store = loaded_entry.runtime_data.catalog
    assert store.catalog.find_by_repo_id(REPO) is None  # offered, not registered
    issue_id = downloaded_issue_id(loaded_entry.entry_id, REPO)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    flow = await _fix_flows(hass).async_init(DOMAIN, data={"issue_id": issue_id})
    assert flow["step_id"] == "add_model"
    suggested = {
        str(key): key.description["suggested_value"]  # type: ignore[index]
        for key in flow["data_schema"].schema
    }
    assert suggested["name"] == "small-model"
    assert suggested["key"] == "small-model"
    assert suggested["mode"] == "cluster"
    bad = await _fix_flows(hass).async_configure(
        flow["flow_id"], {**suggested, "key": "Not A Key!"}
    )
    assert bad["errors"] == {"key": "invalid_model"}
    assert store.catalog.find_by_repo_id(REPO) is None
    done = await _fix_flows(hass).async_configure(
        flow["flow_id"], {**suggested, "name": "Small Model", "max_model_len": 8192}
    )
    assert done["type"] == "create_entry"
    added = store.catalog.get("small-model")
    assert (added.repo_id, added.mode, added.max_model_len) == (REPO, "cluster", 8192)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_download_whose_size_the_hub_does_not_fully_know(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """huggingface_hub 2.x's dry run says "an unknown size": the download runs all the same,
    the started event says the size is a floor, the sensor ends at the real total."""
    sim.faults.hide_a_file_size()
    events = _events(hass, "download_started", "download_finished", "download_failed")

    response = await _download(hass, loaded_entry, repo_id=REPO, target="head", wait=True)
    await hass.async_block_till_done()

    assert (response["status"], response["bytes"]) == ("finished", 12 * GB)
    assert [event.event_type for event in events] == [
        f"{DOMAIN}_download_started",
        f"{DOMAIN}_download_finished",
    ]
    assert events[0].data["size_known"] is False
    assert 0 < events[0].data["bytes_needed"] < 12 * GB
    progress = _state(hass, PROGRESS)
    assert (progress.state, progress.attributes["total_bytes"]) == ("100", 12 * GB)


async def test_too_little_disk_is_refused_before_any_byte(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    events = _events(hass, "download_started", "download_failed")
    with pytest.raises(HomeAssistantError) as err:
        await _download(hass, loaded_entry, repo_id="org/huge", wait=True)
    assert err.value.translation_key == "download_failed"
    assert "the download needs 902.0 GB" in str(err.value.translation_placeholders)
    assert [event.data["reason"] for event in events] == ["insufficient_disk"]
    assert "env TQDM_POSITION=-1 hf download org/huge" not in sim.nodes[0].commands
    assert "org/huge" not in sim.world.storage[0].hf_cache
    assert _state(hass, STATUS).state == "failed"
    # No bytes were written: nothing to resume or clean up.
    issue = failed_issue_id(loaded_entry.entry_id, "org/huge")
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue) is None


async def test_failed_download_resumes_from_the_fix_flow(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    assert await async_setup_component(hass, REPAIRS_DOMAIN, {})
    events = _events(hass, "download_failed", "download_finished")
    sim.faults.fail_downloads_at(0.5)
    with pytest.raises(HomeAssistantError):
        await _download(hass, loaded_entry, repo_id=REPO, wait=True)
    assert events[0].data["reason"] == "error"
    assert "RemoteProtocolError" in events[0].data["error"]
    assert sim.world.storage[0].hf_cache[REPO].stored >= 6 * GB
    issue_id = failed_issue_id(loaded_entry.entry_id, REPO)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None

    sim.faults.fail_downloads_at(None)
    flow = await _fix_flows(hass).async_init(DOMAIN, data={"issue_id": issue_id})
    assert flow["type"] == "menu"
    assert flow["menu_options"] == ["resume", "remove"]
    resumed = await _fix_flows(hass).async_configure(flow["flow_id"], {"next_step_id": "resume"})
    assert resumed["type"] == "create_entry"
    await async_wait_until(hass, lambda: _state(hass, STATUS).state == "finished")
    assert sim.world.storage[0].hf_cache[REPO].complete
    assert events[-1].event_type == f"{DOMAIN}_download_finished"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_cancel_then_remove_partial_files(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    sim.config.download_seconds = 5.0
    events = _events(hass, "download_failed")
    await _download(hass, loaded_entry, repo_id=REPO)
    with pytest.raises(HomeAssistantError) as busy:
        await _download(hass, loaded_entry, repo_id="org/other")
    assert busy.value.translation_key == "download_in_progress"
    await async_wait_until(hass, lambda: _state(hass, PROGRESS).state not in ("unknown", "0"))
    assert _state(hass, CANCEL).state != "unavailable"
    await hass.services.async_call("button", "press", {ATTR_ENTITY_ID: CANCEL}, blocking=True)
    await async_wait_until(hass, lambda: _state(hass, STATUS).state == "cancelled")
    assert [event.data["reason"] for event in events] == ["cancelled"]
    free_before = sim.world.storage[0].free
    assert not sim.world.storage[0].hf_cache[REPO].complete

    await hass.services.async_call(
        DOMAIN,
        "remove_download",
        {"cluster": loaded_entry.entry_id, "repo_id": REPO},
        blocking=True,
    )
    assert REPO not in sim.world.storage[0].hf_cache
    assert sim.world.storage[0].free > free_before
    assert f"hf cache rm model/{REPO} --yes" in sim.nodes[0].commands
    with pytest.raises(ServiceValidationError) as idle:
        await hass.services.async_call(
            DOMAIN, "cancel_download", {"cluster": loaded_entry.entry_id}, blocking=True
        )
    assert idle.value.translation_key == "no_download_running"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"repo_id": "x; reboot"}, "invalid_input"),
        ({"repo_id": "org/m", "target": "node7"}, "invalid_target"),
    ],
)
async def test_bad_download_input(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    sim: SimCluster,
    data: dict[str, str],
    key: str,
) -> None:
    commands = len(sim.nodes[0].commands)
    with pytest.raises(ServiceValidationError) as err:
        await _download(hass, loaded_entry, **data)
    assert err.value.translation_key == key
    assert len(sim.nodes[0].commands) == commands  # nothing was sent


async def test_software_update_entity_installs_with_progress(
    hass: HomeAssistant, config_entry: MockConfigEntry, sim: SimCluster
) -> None:
    sim.repo.behind = 3
    before, upstream = sim.repo.head, sim.repo.upstream
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    state = _state(hass, UPDATE)
    assert state.state == "on"
    assert state.attributes["installed_version"] == before[:7]
    assert state.attributes["latest_version"] == upstream[:7]
    assert state.attributes["release_summary"] == "3 commits behind upstream"
    assert state.attributes["commits_behind"] == 3
    assert state.attributes["title"] == "spark-vllm-docker"
    client = await _release_notes(hass)
    assert client.splitlines()[0].startswith(f"- `{upstream[:7]}` ")
    assert len(client.splitlines()) == 3

    events = _events(hass, "software_update_started", "software_update_finished")
    seen: list[tuple[bool, Any]] = []

    @callback
    def record(event: Event) -> None:
        if event.data["entity_id"] == UPDATE:
            attributes = event.data["new_state"].attributes
            seen.append((attributes.get("in_progress"), attributes.get("update_percentage")))

    hass.bus.async_listen("state_changed", record)
    await hass.services.async_call(
        UPDATE_DOMAIN, SERVICE_INSTALL, {ATTR_ENTITY_ID: UPDATE}, blocking=True
    )
    await hass.async_block_till_done()
    state = _state(hass, UPDATE)
    assert state.state == "off"
    assert state.attributes["installed_version"] == upstream[:7]
    assert state.attributes["log_tail"][-1] == "Done."
    assert sim.repo.head == upstream
    assert "cd ~/spark-vllm-docker && git pull --ff-only && ./build-and-copy.sh -c" in (
        sim.nodes[0].commands
    )
    percentages = [p for busy, p in seen if busy]
    assert percentages
    assert percentages == sorted(percentages)
    assert 5 <= max(percentages) <= 100
    assert [event.event_type for event in events] == [
        f"{DOMAIN}_software_update_started",
        f"{DOMAIN}_software_update_finished",
    ]
    assert events[0].data["behind"] == 3
    assert events[1].data["installed"] == upstream
    assert await hass.config_entries.async_unload(config_entry.entry_id)


async def _release_notes(hass: HomeAssistant) -> str:
    entity = hass.data["entity_components"][UPDATE_DOMAIN].get_entity(UPDATE)
    notes = await entity.async_release_notes()
    assert isinstance(notes, str)
    return notes


async def test_software_update_failures(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """A failing build keeps the old commit and shows its last lines; a swap blocks the install."""
    software = loaded_entry.runtime_data.operations.software  # type: ignore[union-attr]
    sim.repo.behind = 2
    sim.repo.build_fails = True
    await software.async_refresh()
    events = _events(hass, "software_update_failed")
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            UPDATE_DOMAIN, SERVICE_INSTALL, {ATTR_ENTITY_ID: UPDATE}, blocking=True
        )
    assert err.value.translation_key == "command_failed"
    state = _state(hass, UPDATE)
    assert state.attributes["in_progress"] is False
    assert "ERROR: failed to solve" in state.attributes["log_tail"][-1]
    assert "ERROR: failed to solve" in events[0].data["last_lines"][-1]

    sim.repo.build_fails = False
    loaded_entry.runtime_data.swap.async_start("qwen36")
    with pytest.raises(HomeAssistantError) as busy:
        await hass.services.async_call(
            UPDATE_DOMAIN, SERVICE_INSTALL, {ATTR_ENTITY_ID: UPDATE}, blocking=True
        )
    assert busy.value.translation_key == "swap_in_progress"
    await hass.async_block_till_done(wait_background_tasks=True)  # the swap's task
    assert not loaded_entry.runtime_data.swap.running

    sim.repo.fetch_fails = True
    await software.async_refresh()
    await hass.async_block_till_done()
    assert _state(hass, UPDATE).state == "unavailable"


async def test_checks_are_periodic_and_cheap(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """Upstream moving on shows up at the next check, 6 hours later, by reading the checkout
    (no pull, no build); the free disk space follows every 5 minutes."""
    assert _state(hass, UPDATE).state == "off"
    nodes = node_strings(sim)
    disk = _disk_entity(hass, loaded_entry, nodes[0])
    sim.repo.behind = 2
    sim.world.storage[0].free -= 50 * GB
    sent = len(sim.nodes[0].commands)

    # (+ 2 s: coordinators schedule their next refresh on a whole second plus some jitter)
    async_fire_time_changed(hass, dt_util.utcnow() + DISK_SPACE_INTERVAL + timedelta(seconds=2))
    await hass.async_block_till_done(wait_background_tasks=True)  # polls run in the background
    assert float(_state(hass, disk).state) == pytest.approx(150.0)
    assert _state(hass, UPDATE).state == "off"  # not checked yet

    async_fire_time_changed(hass, dt_util.utcnow() + UPDATE_CHECK_INTERVAL + timedelta(seconds=2))
    await hass.async_block_till_done(wait_background_tasks=True)
    state = _state(hass, UPDATE)
    assert (state.state, state.attributes["commits_behind"]) == ("on", 2)
    checks = [c for c in sim.nodes[0].commands[sent:] if "git " in c]
    assert checks
    assert all(c.startswith("cd ~/spark-vllm-docker && git fetch --quiet && ") for c in checks)
    assert not any("git pull" in c or "build-and-copy" in c for c in sim.nodes[0].commands)
