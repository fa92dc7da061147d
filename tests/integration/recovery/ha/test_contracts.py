"""The shared contract fixtures (tests/contracts) as this side receives them."""

from __future__ import annotations

import json
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.translation import async_load_integrations
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.spark_control.const import (
    DOMAIN,
    EVENT_HEALTH_REPORT,
    EVENT_SERVICE_RECOVERED,
    EVENT_WEDGE_REPORT,
)
from custom_components.spark_control.logbook import async_describe
from custom_components.spark_control.recovery import WEDGE_REPORT_SCHEMA
from tests.paths import CONTRACTS
from tests.sim import SimCluster


def _contract(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CONTRACTS / name).read_text())
    return data


def test_wedge_report_contract_matches_the_schema() -> None:
    contract = _contract("wedge_report.json")
    assert contract["ha_event"] == EVENT_WEDGE_REPORT
    report = WEDGE_REPORT_SCHEMA(contract["example"])
    assert report == contract["example"]
    assert set(contract["required"]) | set(contract["optional"]) == {
        "service",
        "error",
        "source",
        "entry_id",
        "upstream",
    }


async def test_contract_wedge_report_repairs_the_service(
    hass: HomeAssistant, sim: SimCluster, loaded_entry: MockConfigEntry
) -> None:
    recovered = async_capture_events(hass, EVENT_SERVICE_RECOVERED)
    sim.faults.wedge("parakeet")
    hass.bus.async_fire(EVENT_WEDGE_REPORT, _contract("wedge_report.json")["example"])
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(recovered) == 1
    assert sim.nodes[1].commands.count("docker restart parakeet-asr") == 1


async def test_health_event_contract_is_described_in_the_logbook(hass: HomeAssistant) -> None:
    await async_load_integrations(hass, {DOMAIN})  # what setting the integration up loads
    contract = _contract("health_event.json")
    assert contract["ha_event"] == EVENT_HEALTH_REPORT
    message = async_describe(hass, EVENT_HEALTH_REPORT, contract["example"])
    assert message == "was reported failing by open-webui in 420 ms: HTTP 503"
    # Only the required keys: still a sentence.
    minimal = {key: contract["example"][key] for key in contract["required"]}
    assert async_describe(hass, EVENT_HEALTH_REPORT, minimal) == (
        "was reported failing: unknown error"
    )
