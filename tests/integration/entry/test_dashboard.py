"""The dashboard strategy module is served by the integration and loaded by the frontend
(what it draws is checked in a real browser: tests/browser/dashboard.test.mjs)."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.spark_control.dashboard import STRATEGY_FILE, STRATEGY_URL


async def test_strategy_module_is_served_and_loaded(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    config_entry: MockConfigEntry,
) -> None:
    assert await async_setup_component(hass, "frontend", {})
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    # Every frontend imports it (as a module, so `customElements.define` runs once).
    urls = hass.data["frontend_extra_module_url"].urls
    ours = [url for url in urls if url.startswith(f"{STRATEGY_URL}?v=")]
    assert len(ours) == 1
    client = await hass_client()
    response = await client.get(ours[0])
    assert response.status == 200
    body = await response.text()
    assert body == STRATEGY_FILE.read_text()
    assert 'customElements.define("ll-strategy-dashboard-spark-control"' in body
    assert await hass.config_entries.async_unload(config_entry.entry_id)
