"""The config flow as a person uses it: every field error at once, a way back from the key
step, translated aborts, per-cluster voice ports and the repair that changes them."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any
from unittest.mock import AsyncMock, patch

import pytest
from homeassistant.components.repairs import DOMAIN as REPAIRS_DOMAIN
from homeassistant.components.repairs.issue_handler import RepairsFlowManager
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, UnknownFlow
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spark_control.const import (
    CONF_PRIVATE_KEY,
    CONF_STT_PORT,
    CONF_TTS_PORT,
    CONF_VOICE_BRIDGES,
    DEFAULT_STT_PORT,
    DEFAULT_TTS_PORT,
    DOMAIN,
)
from tests.paths import REPO
from tests.sim import SimCluster
from tests.sim_entry import node_strings, sim_entry_data

from .test_config_flow import _user_input

EN = json.loads((REPO / "custom_components/spark_control/translations/en.json").read_text())
# The options form's other fields, at their defaults (the tests vary the voice bridges).
OPTIONS_FORM = {
    "poll_interval": 5,
    "metrics_interval": 30,
    "swap_timeout": 15,
    "deep_check_interval": 5,
    "restart_limit": 3,
    "restart_window": 30,
    "probe_timeout": 30,
}


@pytest.fixture
def mock_setup_entry() -> Iterator[AsyncMock]:
    """Created entries do not load here: the flow is under test."""
    with (
        patch("custom_components.spark_control.async_setup_entry", return_value=True) as setup,
        patch("custom_components.spark_control.async_unload_entry", return_value=True),
    ):
        yield setup


def _services_input(sim: SimCluster) -> dict[str, Any]:
    return {
        service: f"127.0.0.1:{url.rsplit(':', 1)[1]}"
        for service, url in (
            ("vllm", sim.vllm.url),
            ("parakeet", sim.parakeet.url),
            ("magpie", sim.magpie.url),
        )
    }


async def _start(hass: HomeAssistant) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["step_id"] == "user"
    return dict(result)


async def test_every_field_error_at_once(hass: HomeAssistant, sim: SimCluster) -> None:
    """Four wrong fields: four errors in one answer, each translated; the bad node named."""
    result = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        _user_input(
            sim, nodes="bad host;", ssh_user="Root$(id)", ssh_port=22.5, repo_path="relative"
        ),
    )
    assert result["errors"] == {
        "nodes": "invalid_nodes",
        "ssh_user": "invalid_ssh_user",
        "ssh_port": "invalid_ssh_port",
        "repo_path": "invalid_repo_path",
    }
    assert set(result["errors"].values()) <= set(EN["config"]["error"])
    # The node error names the node, as typed.
    assert result["description_placeholders"]["node"] == "bad host;"
    assert "{node}" in EN["config"]["error"]["invalid_nodes"]


@pytest.mark.usefixtures("mock_setup_entry")
async def test_back_from_the_key_steps_to_fix_a_host(
    hass: HomeAssistant, sim: SimCluster, client_key: tuple[str, str]
) -> None:
    """A mistyped node is noticed on the key step; "change the nodes" goes back to the
    first form, filled with what was typed, and the corrected flow finishes."""
    result = await _start(hass)
    wrong = _user_input(sim, key_source="generate", nodes="10.255.255.1")
    result = await hass.config_entries.flow.async_configure(result["flow_id"], wrong)
    assert result["step_id"] == "authorize_key"
    public_key = result["description_placeholders"]["public_key"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"change_nodes": True}
    )
    assert result["step_id"] == "user"
    suggested = {
        str(key): key.description["suggested_value"]
        for key in result["data_schema"].schema
        if key.description
    }
    assert suggested["nodes"] == "10.255.255.1"
    assert suggested["cluster_name"] == "Lab"
    # Corrected, and this time with a pasted key: that step has the way back too.
    result = await hass.config_entries.flow.async_configure(result["flow_id"], _user_input(sim))
    assert result["step_id"] == "paste_key"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"change_nodes": True}
    )
    assert result["step_id"] == "user"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _user_input(sim, key_source="generate")
    )
    # The key shown before stays the same: what the user may have installed stays valid.
    assert result["description_placeholders"]["public_key"] == public_key
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"change_nodes": True}
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], _user_input(sim))
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PRIVATE_KEY: client_key[0]}
    )
    assert result["step_id"] == "services"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], _services_input(sim))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["nodes"] == node_strings(sim)


@pytest.mark.usefixtures("mock_setup_entry")
async def test_a_flow_left_open_does_not_block_the_cluster(
    hass: HomeAssistant, sim: SimCluster, client_key: tuple[str, str]
) -> None:
    """A flow left open at the services step (its browser tab closed) is listed nowhere, so
    it must not block the cluster until Home Assistant restarts: a new flow for the same
    cluster goes through, and Home Assistant ends the old one when the entry is created."""

    async def to_services() -> str:
        result = await _start(hass)
        result = await hass.config_entries.flow.async_configure(result["flow_id"], _user_input(sim))
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_PRIVATE_KEY: client_key[0]}
        )
        assert result["step_id"] == "services", result
        return str(result["flow_id"])

    left = await to_services()
    again = await to_services()
    result = await hass.config_entries.flow.async_configure(again, _services_input(sim))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    with pytest.raises(UnknownFlow):
        await hass.config_entries.flow.async_configure(left, _services_input(sim))
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


def test_helper_aborts_are_translated() -> None:
    """Aborts HA's flow helpers raise on our behalf have texts of ours too."""
    assert {
        "already_configured",
        "already_in_progress",
        "reauth_successful",
        "reconfigure_successful",
    } <= set(EN["config"]["abort"])


@pytest.mark.usefixtures("mock_setup_entry")
async def test_each_cluster_gets_its_own_voice_ports(
    hass: HomeAssistant, sim: SimCluster, client_key: tuple[str, str]
) -> None:
    """A new cluster's bridges default to the first pair no other cluster claims."""
    other = {"nodes": ["other-head"], "ssh_port": 22}
    MockConfigEntry(domain=DOMAIN, title="Other", unique_id="other", data=other).add_to_hass(hass)
    result = await _start(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], _user_input(sim))
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PRIVATE_KEY: client_key[0]}
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], _services_input(sim))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    stt, tts = result["result"].options[CONF_STT_PORT], result["result"].options[CONF_TTS_PORT]
    # "Other" has no options: it claims the defaults.
    assert (stt, tts) != (DEFAULT_STT_PORT, DEFAULT_TTS_PORT)
    assert stt > DEFAULT_STT_PORT
    assert tts > DEFAULT_TTS_PORT
    assert stt != tts


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def no_announcement() -> Iterator[None]:
    """The bridges run without mDNS announcement (tests/integration/voice covers it): this test is
    about their ports."""
    with patch("custom_components.spark_control.voice.async_lan_address", return_value=None):
        yield


@pytest.mark.usefixtures("no_announcement")
async def test_port_repair_changes_the_ports(
    hass: HomeAssistant, sim: SimCluster, client_key: tuple[str, str]
) -> None:
    """A taken port raises a fixable repair; its fix flow refuses a taken port, then saves
    free ones, the entry reloads and the bridges listen there."""
    with socket.socket() as blocker:
        blocker.bind(("0.0.0.0", 0))
        blocker.listen()
        taken = int(blocker.getsockname()[1])
        entry = MockConfigEntry(
            domain=DOMAIN,
            title="Lab",
            unique_id="lab",
            data=sim_entry_data(sim, *client_key),
            options={CONF_VOICE_BRIDGES: True, CONF_STT_PORT: taken, CONF_TTS_PORT: _free_port()},
        )
        entry.add_to_hass(hass)
        assert await async_setup_component(hass, REPAIRS_DOMAIN, {})
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        issue_id = f"voice_port_in_use_{entry.entry_id}"
        issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
        assert issue is not None
        assert issue.is_fixable

        client_flow: RepairsFlowManager = hass.data[REPAIRS_DOMAIN]["flow_manager"]
        result = await client_flow.async_init(DOMAIN, data={"issue_id": issue_id})
        assert result["step_id"] == "ports"
        stt_new, tts_new = _free_port(), _free_port()
        result = await client_flow.async_configure(
            result["flow_id"], {CONF_STT_PORT: taken, CONF_TTS_PORT: taken}
        )
        assert result["errors"] == {CONF_STT_PORT: "port_in_use", CONF_TTS_PORT: "port_in_use"}
        result = await client_flow.async_configure(
            result["flow_id"], {CONF_STT_PORT: stt_new, CONF_TTS_PORT: stt_new}
        )
        assert result["errors"] == {CONF_TTS_PORT: "same_port"}
        result = await client_flow.async_configure(
            result["flow_id"], {CONF_STT_PORT: stt_new, CONF_TTS_PORT: tts_new}
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert (entry.options[CONF_STT_PORT], entry.options[CONF_TTS_PORT]) == (stt_new, tts_new)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    voice = entry.runtime_data.voice
    assert voice is not None
    assert (voice.bridges.stt.port, voice.bridges.tts.port) == (stt_new, tts_new)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_options_refuse_ports_of_another_cluster(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """The options form will not take another cluster's bridge ports, nor one port twice."""
    MockConfigEntry(
        domain=DOMAIN,
        title="Other",
        unique_id="other",
        data={"nodes": ["other-head"], "ssh_port": 22},
        options={CONF_STT_PORT: 10500, CONF_TTS_PORT: 10501},
    ).add_to_hass(hass)
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    form = {**OPTIONS_FORM, CONF_VOICE_BRIDGES: False}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**form, CONF_STT_PORT: 10500, CONF_TTS_PORT: 10502}
    )
    assert result["errors"] == {CONF_STT_PORT: "port_of_other_cluster"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**form, CONF_STT_PORT: 10502, CONF_TTS_PORT: 10502.0}
    )
    assert result["errors"] == {CONF_TTS_PORT: "same_port"}
    assert set(result["errors"].values()) <= set(EN["options"]["error"])
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**form, CONF_STT_PORT: 10502, CONF_TTS_PORT: 10503}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert loaded_entry.options[CONF_STT_PORT] == 10502


@pytest.mark.usefixtures("no_announcement")
async def test_options_refuse_a_port_another_program_listens_on(
    hass: HomeAssistant, sim: SimCluster, client_key: tuple[str, str]
) -> None:
    """A port something else listens on is refused on the options form (not saved, then failed
    at the reload as a repair issue); the ports the entry's own bridges hold are not."""
    own_stt, own_tts = _free_port(), _free_port()
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Lab",
        unique_id="lab",
        data=sim_entry_data(sim, *client_key),
        options={CONF_VOICE_BRIDGES: True, CONF_STT_PORT: own_stt, CONF_TTS_PORT: own_tts},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    form = {**OPTIONS_FORM, CONF_VOICE_BRIDGES: True}
    with socket.socket() as blocker:
        blocker.bind(("0.0.0.0", 0))
        blocker.listen()
        taken = int(blocker.getsockname()[1])
        result = await hass.config_entries.options.async_init(entry.entry_id)
        result = await hass.config_entries.options.async_configure(
            result["flow_id"], {**form, CONF_STT_PORT: own_stt, CONF_TTS_PORT: taken}
        )
        assert result["errors"] == {CONF_TTS_PORT: "port_in_use"}
        assert set(result["errors"].values()) <= set(EN["options"]["error"])
        # The bridges listen on both of these now, and may swap them.
        result = await hass.config_entries.options.async_configure(
            result["flow_id"], {**form, CONF_STT_PORT: own_tts, CONF_TTS_PORT: own_stt}
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"voice_port_in_use_{entry.entry_id}") is None
    voice = entry.runtime_data.voice
    assert voice is not None
    assert (voice.bridges.stt.port, voice.bridges.tts.port) == (own_tts, own_stt)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
