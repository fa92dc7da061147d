"""Every path of the config, reauth, reconfigure and options flows, against the simulator."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any
from unittest.mock import AsyncMock, patch

import asyncssh
import pytest
from homeassistant.config_entries import SOURCE_HASSIO, SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spark_control.const import (
    CONF_ENDPOINTS,
    CONF_HOST_KEYS,
    CONF_NODES,
    CONF_POLL_INTERVAL,
    CONF_PRIVATE_KEY,
    CONF_PUBLIC_KEY,
    CONF_SWAP_TIMEOUT,
    CONF_VOICE_BRIDGES,
    DOMAIN,
)
from custom_components.spark_control.sparklib.keys import fingerprint
from tests.sim import SimCluster, generate_client_key
from tests.sim_entry import entry_identity, node_strings


@pytest.fixture
def mock_setup_entry() -> Iterator[AsyncMock]:
    """Keep the created entry from loading: setup itself is tested in test_init.py."""
    with (
        patch(
            "custom_components.spark_control.async_setup_entry", return_value=True
        ) as setup_entry,
        patch("custom_components.spark_control.async_unload_entry", return_value=True),
    ):
        yield setup_entry


def _closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _user_input(sim: SimCluster, key_source: str = "paste", **changes: Any) -> dict[str, Any]:
    return {
        "cluster_name": "Lab",
        "nodes": ", ".join(node_strings(sim)),
        "ssh_user": sim.config.username,
        "ssh_port": 22,
        "repo_path": sim.config.repo_path,
        "key_source": key_source,
        **changes,
    }


def _services_input(sim: SimCluster, **changes: Any) -> dict[str, Any]:
    return {
        "vllm": f"127.0.0.1:{_port(sim.vllm.url)}",
        "parakeet": f"127.0.0.1:{_port(sim.parakeet.url)}",
        "magpie": f"127.0.0.1:{_port(sim.magpie.url)}",
        **changes,
    }


async def _start(hass: HomeAssistant) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    return dict(result)


@pytest.mark.usefixtures("mock_setup_entry")
async def test_user_flow_with_pasted_key(
    hass: HomeAssistant, sim: SimCluster, client_key: tuple[str, str]
) -> None:
    """Paste a key: every node is probed and pinned, the endpoints probed, the entry created."""
    result = await _start(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], _user_input(sim))
    assert result["step_id"] == "paste_key"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PRIVATE_KEY: client_key[0]}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "services"
    # The pinned fingerprints are shown for the user to compare.
    for node in sim.nodes:
        assert node.host_key_fingerprint in result["description_placeholders"]["fingerprints"]
        assert "uname -srm" in node.commands
    # The suggested endpoints follow the defaults: vLLM on the head, speech on the second node.
    suggested = {
        str(key): key.description["suggested_value"]
        for key in result["data_schema"].schema
        if str(key) in ("vllm", "parakeet", "magpie")
    }
    assert suggested == {
        "vllm": "127.0.0.1:8888",
        "parakeet": "127.0.0.1:8000",
        "magpie": "127.0.0.1:9000",
    }
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _services_input(sim, gateway_url="ftp://gateway")
    )
    assert result["errors"] == {"gateway_url": "invalid_gateway_url"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        _services_input(sim, gateway_url="http://spark-gateway:8080/", gateway_api_key="k3y"),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Lab"
    assert result["data"]["gateway_url"] == "http://spark-gateway:8080"
    assert result["data"]["gateway_api_key"] == "k3y"
    data = result["data"]
    nodes = node_strings(sim)
    assert data[CONF_NODES] == nodes
    assert {node: line.split()[:2] for node, line in data[CONF_HOST_KEYS].items()} == {
        node: sim_node.host_public_key.split()[:2]
        for node, sim_node in zip(nodes, sim.nodes, strict=True)
    }
    assert data[CONF_ENDPOINTS]["magpie"] == {"host": "127.0.0.1", "port": _port(sim.magpie.url)}
    assert data[CONF_PUBLIC_KEY].split()[:2] == client_key[1].split()[:2]
    # The cluster is known by its head node's host key, not by an address.
    assert result["result"].unique_id == fingerprint(sim.nodes[0].host_public_key)
    assert result["result"].minor_version == 2


@pytest.mark.usefixtures("mock_setup_entry")
async def test_user_flow_with_generated_key(hass: HomeAssistant, sim: SimCluster) -> None:
    """A generated key is shown; it is rejected until the nodes authorize it, then accepted."""
    result = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _user_input(sim, key_source="generate")
    )
    assert result["step_id"] == "authorize_key"
    public_line = result["description_placeholders"]["public_key"]
    assert public_line.startswith("ssh-ed25519 ")
    assert public_line.endswith("spark-control@homeassistant")

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["errors"] == {"base": "auth_rejected"}
    assert result["description_placeholders"]["host"] == node_strings(sim)[0]

    # The user appends the line to ~/.ssh/authorized_keys on every node.
    for node in sim.nodes:
        node.authorized_key_data.add(asyncssh.import_public_key(public_line).public_data)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["step_id"] == "services"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], _services_input(sim))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_PUBLIC_KEY] == public_line


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"nodes": "bad host; rm -rf /"}, {"nodes": "invalid_nodes"}),
        ({"nodes": " , "}, {"nodes": "no_nodes"}),
        ({"nodes": "127.0.0.1:99999"}, {"nodes": "invalid_nodes"}),
        ({"ssh_user": "Root$(id)"}, {"ssh_user": "invalid_ssh_user"}),
        ({"ssh_port": 22.5}, {"ssh_port": "invalid_ssh_port"}),
        ({"repo_path": "~/../etc"}, {"repo_path": "invalid_repo_path"}),
        ({"repo_path": "relative/path"}, {"repo_path": "invalid_repo_path"}),
    ],
)
async def test_user_step_rejects_bad_input(
    hass: HomeAssistant, sim: SimCluster, changes: dict[str, Any], errors: dict[str, str]
) -> None:
    """Bad nodes, user names and paths are refused with a field error, before any SSH."""
    result = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _user_input(sim, **changes)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == errors
    assert all(not node.commands for node in sim.nodes)


async def test_paste_key_errors(
    hass: HomeAssistant, sim: SimCluster, client_key: tuple[str, str]
) -> None:
    """An unreadable key, a node that is down, and a key no node accepts each get an error."""
    result = await _start(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], _user_input(sim))
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PRIVATE_KEY: "not a key"}
    )
    assert result["errors"] == {CONF_PRIVATE_KEY: "invalid_private_key"}

    other_key, _ = generate_client_key("stranger")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PRIVATE_KEY: other_key}
    )
    assert result["errors"] == {"base": "auth_rejected"}

    # Now with a node nobody listens on.
    hass.config_entries.flow.async_abort(result["flow_id"])
    result = await _start(hass)
    dead = f"127.0.0.1:{_closed_port()}"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _user_input(sim, nodes=f"{node_strings(sim)[0]}, {dead}")
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PRIVATE_KEY: client_key[0]}
    )
    assert result["errors"] == {"base": "cannot_connect"}
    assert result["description_placeholders"]["host"] == dead


@pytest.mark.usefixtures("mock_setup_entry")
async def test_services_step_errors(
    hass: HomeAssistant, sim: SimCluster, client_key: tuple[str, str]
) -> None:
    """A malformed endpoint, an endpoint where nothing listens and a gateway URL that is not
    a plain http(s) URL (unparsable, with credentials, no scheme) are field errors."""
    result = await _start(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], _user_input(sim))
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PRIVATE_KEY: client_key[0]}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        _services_input(sim, vllm="http://x", magpie=f"127.0.0.1:{_closed_port()}"),
    )
    assert result["errors"] == {"vllm": "invalid_endpoint"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _services_input(sim, magpie=f"127.0.0.1:{_closed_port()}")
    )
    assert result["errors"] == {"magpie": "endpoint_unreachable"}
    for bad_url in ("http://[spark-gateway", "http://user:secret@spark-gateway:8080", "gateway"):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], _services_input(sim, gateway_url=bad_url)
        )
        assert result["errors"] == {"gateway_url": "invalid_gateway_url"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], _services_input(sim))
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_one_entry_per_cluster(
    hass: HomeAssistant, sim: SimCluster, config_entry: MockConfigEntry
) -> None:
    """The head node identifies the cluster: adding it twice aborts."""
    config_entry.add_to_hass(hass)
    result = await _start(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], _user_input(sim))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_reauth_after_rejected_key(
    hass: HomeAssistant,
    sim: SimCluster,
    config_entry: MockConfigEntry,
    client_key: tuple[str, str],
) -> None:
    """A node rejecting the key fails setup with a reauth flow; re-authorizing recovers."""
    sim.faults.reject_key(1)
    config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert len(flows) == 1
    assert flows[0]["context"]["source"] == "reauth"
    flow_id = flows[0]["flow_id"]
    result = await hass.config_entries.flow.async_configure(flow_id)
    assert result["step_id"] == "reauth_confirm"
    assert result["description_placeholders"]["public_key"] == client_key[1]

    # Still rejected: the form says which node.
    result = await hass.config_entries.flow.async_configure(flow_id, {})
    assert result["errors"] == {"base": "auth_rejected"}
    assert result["description_placeholders"]["host"] == node_strings(sim)[1]
    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_PRIVATE_KEY: "garbage"})
    assert result["errors"] == {CONF_PRIVATE_KEY: "invalid_private_key"}

    await sim.faults.clear()
    result = await hass.config_entries.flow.async_configure(flow_id, {})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.LOADED
    await hass.config_entries.async_unload(config_entry.entry_id)


async def test_reauth_with_pasted_key(
    hass: HomeAssistant, sim: SimCluster, config_entry: MockConfigEntry
) -> None:
    """Pasting another authorized key replaces the stored pair."""
    new_private, new_public = generate_client_key("replacement")
    for node in sim.nodes:
        node.authorized_key_data.add(asyncssh.import_public_key(new_public).public_data)
    config_entry.add_to_hass(hass)
    result = await config_entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PRIVATE_KEY: new_private}
    )
    assert result["reason"] == "reauth_successful"
    assert config_entry.data[CONF_PUBLIC_KEY].split()[:2] == new_public.split()[:2]
    await hass.async_block_till_done()
    await hass.config_entries.async_unload(config_entry.entry_id)


async def test_reconfigure(
    hass: HomeAssistant, sim: SimCluster, loaded_entry: MockConfigEntry
) -> None:
    """Hosts and ports can change; bad values are refused; a dropped node's device goes."""
    config_entry = loaded_entry
    devices = dr.async_get(hass)
    second = "spark-2"  # node devices carry the host name the node reports
    assert any(
        d.name == second for d in dr.async_entries_for_config_entry(devices, loaded_entry.entry_id)
    )
    result = await config_entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    head = node_strings(sim)[0]
    base = {
        "nodes": head,
        "ssh_port": 22,
        "repo_path": "/opt/spark-vllm-docker",
        **_services_input(sim),
    }
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**base, "parakeet": f"127.0.0.1:{_closed_port()}"}
    )
    assert result["errors"] == {"parakeet": "endpoint_unreachable"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**base, "nodes": "no such host!"}
    )
    assert result["errors"] == {"nodes": "invalid_nodes"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], base)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert config_entry.data[CONF_NODES] == [head]
    assert list(config_entry.data[CONF_HOST_KEYS]) == [head]
    assert config_entry.data["repo_path"] == "/opt/spark-vllm-docker"
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.LOADED
    names = {d.name for d in dr.async_entries_for_config_entry(devices, loaded_entry.entry_id)}
    assert second not in names
    assert "spark-1" in names


async def test_options_flow(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    """Every option is offered; saving reloads the entry with the new values."""
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    assert result["step_id"] == "init"
    offered = {str(key) for key in result["data_schema"].schema}
    assert offered == {
        "poll_interval",
        "metrics_interval",
        "swap_timeout",
        "swap_fallback",
        "deep_check_interval",
        "restart_limit",
        "restart_window",
        "vllm_restart_limit",
        "vllm_restart_window",
        "probe_timeout",
        "vllm_probe_interval",
        "vllm_probe_timeout",
        "vllm_freeze_window",
        "vllm_log_watch",
        "vllm_relaunch_on_exit",
        "voice_bridges",
        "stt_port",
        "tts_port",
    }
    old_coordinator = loaded_entry.runtime_data.status
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_POLL_INTERVAL: 2.0,
            "metrics_interval": 60,
            CONF_SWAP_TIMEOUT: 20,
            "deep_check_interval": 0,
            "restart_limit": 2,
            "restart_window": 10,
            "probe_timeout": 15,
            CONF_VOICE_BRIDGES: False,
            "stt_port": 10400,
            "tts_port": 10401,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert loaded_entry.options[CONF_POLL_INTERVAL] == 2
    assert loaded_entry.state is ConfigEntryState.LOADED
    status = loaded_entry.runtime_data.status
    assert status is not old_coordinator
    assert status.update_interval is not None
    assert status.update_interval.total_seconds() == 2


async def test_addon_discovery_links_gateway(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    """The add-on's Supervisor discovery links its gateway to the configured clusters."""
    info = HassioServiceInfo(
        config={"url": "http://local-spark-gateway:8080", "api_key": "secret"},
        name="Spark Gateway",
        slug="local_spark_gateway",
        uuid="1234",
    )
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=info
    )
    assert result["reason"] == "no_cluster"

    config_entry.add_to_hass(hass)
    bad = HassioServiceInfo(config={"url": "javascript:alert(1)"}, name="x", slug="x", uuid="5678")
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=bad
    )
    assert result["reason"] == "invalid_discovery_info"
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=info
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "gateway_linked"
    assert config_entry.data["gateway_url"] == "http://local-spark-gateway:8080"
    assert config_entry.data["gateway_api_key"] == "secret"


async def test_reconfigure_adds_a_node(
    hass: HomeAssistant, sim: SimCluster, config_entry: MockConfigEntry
) -> None:
    """A node added by reconfiguration gets its host key pinned on first use."""
    head, second = node_strings(sim)
    data = dict(config_entry.data)
    data[CONF_NODES] = [head]
    data[CONF_HOST_KEYS] = {head: data[CONF_HOST_KEYS][head]}
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Lab",
        **entry_identity(data),
        data=data,
        options=dict(config_entry.options),
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            "nodes": f"{head}, {second}",
            "ssh_port": 22,
            "repo_path": "~/spark-vllm-docker",
            **_services_input(sim),
        },
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_NODES] == [head, second]
    assert (
        entry.data[CONF_HOST_KEYS][second].split()[:2] == sim.nodes[1].host_public_key.split()[:2]
    )
    await hass.async_block_till_done()
    await hass.config_entries.async_unload(entry.entry_id)
