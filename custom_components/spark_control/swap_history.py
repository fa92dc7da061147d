"""How long each model took to load last time, for the swap's expected duration.

Kept per cluster in HA's storage (a model's load time depends on the cluster's disks and
GPUs), filled from the `spark_control_swap_finished` events, so it survives restarts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers.storage import Store

from .const import DOMAIN, EVENT_SWAP_FINISHED

if TYPE_CHECKING:
    from .coordinator import SparkControlConfigEntry

_VERSION = 1


def _store(hass: HomeAssistant, entry_id: str) -> Store[dict[str, float]]:
    return Store(hass, _VERSION, f"{DOMAIN}.{entry_id}.swap_durations")


class SwapHistory:
    """The last successful load time (seconds) of each model of one cluster."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        self._hass = hass
        self._entry_id = entry_id
        self._store = _store(hass, entry_id)
        self._durations: dict[str, float] = {}

    async def async_load(self) -> None:
        """Read what earlier runs recorded."""
        stored = await self._store.async_load()
        if isinstance(stored, dict):
            self._durations = {
                str(model): float(seconds)
                for model, seconds in stored.items()
                if isinstance(seconds, int | float) and seconds > 0
            }

    def expected_seconds(self, model: str | None) -> float | None:
        """The previous load time of `model`, or None if it never loaded here."""
        return self._durations.get(model) if model else None

    @callback
    def async_swap_finished(self, event: Event[dict[str, Any]]) -> None:
        """Record a finished swap of this cluster (other clusters' events are ignored)."""
        data = event.data
        duration = data.get("duration")
        if data.get("entry_id") != self._entry_id or not isinstance(duration, int | float):
            return
        self._durations[str(data.get("model"))] = round(float(duration), 1)
        # Saved at once (a swap is rare): a reload right after must read it back.
        self._hass.async_create_task(
            self._store.async_save(dict(self._durations)), "spark_control swap durations"
        )


async def async_setup_swap_history(
    hass: HomeAssistant, entry: SparkControlConfigEntry
) -> SwapHistory:
    """Load the entry's history and record its finished swaps until the entry unloads."""
    history = SwapHistory(hass, entry.entry_id)
    await history.async_load()
    entry.async_on_unload(hass.bus.async_listen(EVENT_SWAP_FINISHED, history.async_swap_finished))
    return history


async def async_remove_swap_history(hass: HomeAssistant, entry_id: str) -> None:
    """Forget the recorded load times with the entry."""
    await _store(hass, entry_id).async_remove()
