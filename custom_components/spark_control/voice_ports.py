"""Which TCP ports each cluster's Wyoming bridges use, and finding free ones.

Every cluster runs its own pair of bridges, so a second cluster gets the next free pair
(10311/10211, ...) when it is added instead of colliding with the first on 10310/10210.
"""

from __future__ import annotations

import socket

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant

from .const import CONF_STT_PORT, CONF_TTS_PORT, DEFAULT_STT_PORT, DEFAULT_TTS_PORT, DOMAIN

# How far past the defaults to look for a free pair.
_SEARCH = 100


def voice_ports(entry: ConfigEntry) -> tuple[int, int]:
    """The (STT, TTS) ports an entry's bridges listen on."""
    return (
        int(entry.options.get(CONF_STT_PORT, DEFAULT_STT_PORT)),
        int(entry.options.get(CONF_TTS_PORT, DEFAULT_TTS_PORT)),
    )


def ports_of_other_clusters(hass: HomeAssistant, entry_id: str | None) -> set[int]:
    """Ports the other clusters' bridges claim (whether they run right now or not)."""
    return {
        port
        for entry in hass.config_entries.async_entries(DOMAIN, include_ignore=False)
        if entry.entry_id != entry_id
        for port in voice_ports(entry)
    }


def port_conflicts(hass: HomeAssistant, entry_id: str, stt: int, tts: int) -> dict[str, str]:
    """Form errors for a port pair: one another cluster claims, or the same port twice."""
    errors: dict[str, str] = {}
    claimed = ports_of_other_clusters(hass, entry_id)
    for key, port in ((CONF_STT_PORT, stt), (CONF_TTS_PORT, tts)):
        if port in claimed:
            errors[key] = "port_of_other_cluster"
    if stt == tts:
        errors.setdefault(CONF_TTS_PORT, "same_port")
    return errors


def port_is_free(port: int) -> bool:
    """Whether a TCP listener could open `port` on every interface now (blocking: run it
    in the executor)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _first_free_pair(claimed: set[int]) -> tuple[int, int]:
    for step in range(_SEARCH):
        pair = (DEFAULT_STT_PORT + step, DEFAULT_TTS_PORT + step)
        if not claimed & set(pair) and all(port_is_free(port) for port in pair):
            return pair
    return DEFAULT_STT_PORT, DEFAULT_TTS_PORT  # nothing free nearby: the repair will say so


async def async_suggest_voice_ports(
    hass: HomeAssistant, entry_id: str | None = None
) -> tuple[int, int]:
    """The first (STT, TTS) pair from the defaults upwards that no other cluster claims and
    nothing on this host listens on."""
    claimed = ports_of_other_clusters(hass, entry_id)
    return await hass.async_add_executor_job(_first_free_pair, claimed)
