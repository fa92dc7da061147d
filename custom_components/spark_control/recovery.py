"""Self-healing of the speech services (owned by the recovery engineer)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

    from .coordinator import SparkControlConfigEntry


async def async_setup_recovery(hass: HomeAssistant, entry: SparkControlConfigEntry) -> None:
    """Start watching the speech services (filled in by the recovery engineer)."""


async def async_unload_recovery(hass: HomeAssistant, entry: SparkControlConfigEntry) -> None:
    """Stop watching the speech services (filled in by the recovery engineer)."""
