"""A real Home Assistant (the test harness's instance, outside pytest) with Spark Control set up
against a simulated cluster; shared by the HA benchmarks."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Import the project's package before HA's loader looks for custom_components.
from homeassistant import loader  # noqa: E402
from homeassistant.config_entries import ConfigEntryState  # noqa: E402
from homeassistant.core import HomeAssistant  # noqa: E402
from pytest_homeassistant_custom_component.common import (  # noqa: E402
    MockConfigEntry,
    async_test_home_assistant,
)

import custom_components.spark_control  # noqa: E402, F401
from custom_components.spark_control.const import (  # noqa: E402
    CONF_VOICE_BRIDGES,
    DOMAIN,
)


def entry_data(endpoints: dict[str, Any], private_key: str, public_key: str) -> dict[str, Any]:
    """Config entry data for a simulator described by its endpoints JSON."""
    nodes = [f"{node['host']}:{node['ssh_port']}" for node in endpoints["nodes"]]
    services = endpoints["services"]
    return {
        "cluster_name": "Bench",
        "nodes": nodes,
        "ssh_user": endpoints["username"],
        "ssh_port": 22,
        "repo_path": endpoints["repo_path"],
        "private_key": private_key,
        "public_key": public_key,
        "host_keys": {
            node: info["host_public_key"]
            for node, info in zip(nodes, endpoints["nodes"], strict=True)
        },
        "endpoints": {
            name: {"host": services[name]["host"], "port": services[name]["port"]}
            for name in ("vllm", "parakeet", "magpie")
        },
    }


@asynccontextmanager
async def home_assistant_with_cluster(
    config_dir: Path, data: dict[str, Any], options: dict[str, Any] | None = None
) -> AsyncIterator[tuple[HomeAssistant, MockConfigEntry]]:
    """Start HA, set the integration up for `data` (with extra `options`), yield, then unload
    and stop."""
    async with async_test_home_assistant(config_dir=str(config_dir)) as hass:
        hass.data.pop(loader.DATA_CUSTOM_COMPONENTS)
        entry = MockConfigEntry(
            domain=DOMAIN,
            title="Bench",
            unique_id=data["nodes"][0],
            data=data,
            options={CONF_VOICE_BRIDGES: False, **(options or {})},
        )
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        assert entry.state is ConfigEntryState.LOADED
        try:
            yield hass, entry
        finally:
            await hass.config_entries.async_unload(entry.entry_id)
            await hass.async_block_till_done()
            await hass.async_stop(force=True)
