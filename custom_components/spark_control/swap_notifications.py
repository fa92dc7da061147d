"""The persistent notifications of failed swaps: one per kind and entry, in HA's language.

Persistent notifications carry finished text (the frontend does not translate them), so the
text comes from the integration's translations in the language HA is configured with. Each
has a stable id per entry: a later failure replaces it, a later successful swap of the entry
and the entry's removal dismiss it.
"""

from __future__ import annotations

from typing import Literal

from homeassistant.components import persistent_notification
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.translation import async_get_translations

from .const import DOMAIN

type SwapNotice = Literal["swap_failed", "swap_fell_back"]
NOTICES: tuple[SwapNotice, ...] = ("swap_failed", "swap_fell_back")


def notification_id(entry_id: str, notice: SwapNotice) -> str:
    """The notification's id: stable per entry, so a new one replaces the old."""
    return f"{DOMAIN}_{entry_id}_{notice}"


async def async_notify(
    hass: HomeAssistant,
    entry_id: str,
    notice: SwapNotice,
    placeholders: dict[str, str],
    *,
    starting: bool = False,
) -> None:
    """Show (or replace) the entry's notification of this kind; a failed start or restart of
    vLLM (`starting`) is told as one, under the same id."""
    strings = await async_get_translations(hass, hass.config.language, "exceptions", {DOMAIN})
    words = "start_failed" if starting and notice == "swap_failed" else notice
    prefix = f"component.{DOMAIN}.exceptions.{words}"
    persistent_notification.async_create(
        hass,
        strings[f"{prefix}_notification.message"].format(**placeholders),
        title=strings[f"{prefix}_notification_title.message"],
        notification_id=notification_id(entry_id, notice),
    )


@callback
def async_dismiss_all(hass: HomeAssistant, entry_id: str) -> None:
    """Dismiss the entry's swap notifications (after a successful swap, or its removal)."""
    for notice in NOTICES:
        persistent_notification.async_dismiss(hass, notification_id(entry_id, notice))
