"""Wyoming voice bridges for the cluster's speech services (owned by the voice engineer)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

    from .coordinator import SparkControlConfigEntry


async def async_setup_voice(hass: HomeAssistant, entry: SparkControlConfigEntry) -> None:
    """Start the voice bridges for this entry (filled in by the voice engineer)."""


async def async_unload_voice(hass: HomeAssistant, entry: SparkControlConfigEntry) -> None:
    """Stop the voice bridges for this entry (filled in by the voice engineer)."""
