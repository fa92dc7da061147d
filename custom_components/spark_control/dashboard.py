"""The dashboard strategy the integration ships (frontend/spark-control-strategy.js).

Served from the integration's folder and loaded into every frontend as an extra module, so a
dashboard whose configuration is `strategy: {type: custom:spark-control}` builds itself from
the entity and device registries.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from homeassistant.components.frontend import add_extra_js_url
from homeassistant.components.http import StaticPathConfig
from homeassistant.core import HomeAssistant

from .const import DOMAIN

STRATEGY_FILE = Path(__file__).parent / "frontend" / "spark-control-strategy.js"
STRATEGY_URL = f"/{DOMAIN}/spark-control-strategy.js"


def _version() -> str:
    """A short hash of the module, so browsers load a new version after an update."""
    return hashlib.sha256(STRATEGY_FILE.read_bytes()).hexdigest()[:12]


async def async_register_dashboard_strategy(hass: HomeAssistant) -> None:
    """Serve the strategy module and add it to the frontend (once per HA run)."""
    if not {"http", "frontend"} <= hass.config.components:
        return  # no frontend to load it into (a headless instance, a bare test)
    await hass.http.async_register_static_paths(
        [StaticPathConfig(STRATEGY_URL, str(STRATEGY_FILE), cache_headers=False)]
    )
    version = await hass.async_add_executor_job(_version)
    add_extra_js_url(hass, f"{STRATEGY_URL}?v={version}")
