"""Wyoming voice bridges for the cluster's speech services, run inside Home Assistant."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .const import (
    CONF_GATEWAY_API_KEY,
    CONF_GATEWAY_URL,
    CONF_VOICE_BRIDGES,
    DEFAULT_VOICE_BRIDGES,
    DOMAIN,
    EVENT_WEDGE_REPORT,
    LOGGER,
    SERVICE_MAGPIE,
    SERVICE_PARAKEET,
)
from .sparklib.voice import VoiceBridgeConfig, VoiceBridges
from .sparklib.voice.info import program_names
from .voice_discovery import BridgeAnnouncement, VoiceAnnouncer, async_lan_address
from .voice_ports import voice_ports

VOICE_PORT_ISSUE = "voice_port_in_use"

if TYPE_CHECKING:
    import asyncio

    from .coordinator import SparkControlConfigEntry
    from .sparklib.cluster import ClusterClient


@dataclass
class VoiceService:
    """The running bridges of one config entry and their announcements."""

    bridges: VoiceBridges
    announcer: VoiceAnnouncer | None
    announcing: asyncio.Task[None] | None = None
    _stopped: bool = field(default=False, init=False)

    def as_dict(self) -> dict[str, Any]:
        """State for diagnostics: where the bridges listen and what they offer."""
        announced = self.announcer.announcements if self.announcer is not None else []
        return {
            "stt": self.bridges.stt.uri,
            "tts": self.bridges.tts.uri,
            "announced": {a.service_name: f"tcp://{a.address}:{a.port}" for a in announced},
            "open_connections": {
                "stt": self.bridges.stt.open_connections,
                "tts": self.bridges.tts.open_connections,
            },
            "voices": len(self.bridges.voices.voices),
            "stopped": self._stopped,
        }

    async def async_stop(self) -> None:
        """Withdraw the announcements and close the servers (safe to call twice)."""
        if self._stopped:
            return
        self._stopped = True
        if self.announcing is not None and not self.announcing.done():
            self.announcing.cancel()
            with contextlib.suppress(BaseException):
                await self.announcing
        if self.announcer is not None:
            await self.announcer.async_withdraw()
        await self.bridges.async_stop()


def voice_bridge_config(entry: SparkControlConfigEntry, client: ClusterClient) -> VoiceBridgeConfig:
    """Where the bridges listen (the entry's options) and which speech servers they use (the
    cluster's endpoints)."""
    return VoiceBridgeConfig(
        parakeet_url=client.base_url(SERVICE_PARAKEET),
        magpie_url=client.base_url(SERVICE_MAGPIE),
        stt_port=voice_ports(entry)[0],
        tts_port=voice_ports(entry)[1],
        label=entry.title,
    )


async def async_setup_voice(
    hass: HomeAssistant, entry: SparkControlConfigEntry, client: ClusterClient
) -> VoiceService | None:
    """Start the voice bridges for this entry, announce them and offer them to `wyoming`;
    None when they are off or cannot listen (a repair issue says why)."""
    if not entry.options.get(CONF_VOICE_BRIDGES, DEFAULT_VOICE_BRIDGES):
        return None
    config = voice_bridge_config(entry, client)

    @callback
    def report_wedge(error: str) -> None:
        hass.bus.async_fire(
            EVENT_WEDGE_REPORT,
            {
                "service": SERVICE_PARAKEET,
                "error": error[:200],
                "source": "wyoming",
                "entry_id": entry.entry_id,
            },
        )

    bridges = VoiceBridges(async_get_clientsession(hass), config, on_wedge=report_wedge,
                           on_utterance=_who_spoke_hook(hass, entry))  # fmt: skip
    try:
        await bridges.start()
    except OSError as err:
        # A taken port must not take the whole cluster entry down with it: say so instead.
        LOGGER.error(
            "Voice bridges cannot listen on ports %s (STT) and %s (TTS): %s; "
            "choose other ports in the integration's options",
            config.stt_port,
            config.tts_port,
            err,
        )
        ir.async_create_issue(
            hass,
            DOMAIN,
            _port_issue_id(entry),
            is_fixable=True,  # repairs.VoicePortsRepairFlow asks for other ports
            data={"entry_id": entry.entry_id},
            severity=ir.IssueSeverity.ERROR,
            translation_key="voice_port_in_use",
            translation_placeholders={
                "cluster": entry.title,
                "stt_port": str(config.stt_port),
                "tts_port": str(config.tts_port),
                "error": err.strerror or str(err),
            },
        )
        return None
    ir.async_delete_issue(hass, DOMAIN, _port_issue_id(entry))
    LOGGER.debug("Voice bridges listening: %s, %s", bridges.stt.uri, bridges.tts.uri)

    announcer: VoiceAnnouncer | None = None
    if (address := await async_lan_address(hass)) is not None:
        stt_name, tts_name = program_names(config.label)
        # The cluster's name leads the service names; the entry id keeps them unique.
        suffix = entry.entry_id[-8:].lower()
        announcer = VoiceAnnouncer(
            hass,
            [
                BridgeAnnouncement(f"{stt_name} STT {suffix}", address, bridges.stt.port, stt_name),
                BridgeAnnouncement(f"{tts_name} TTS {suffix}", address, bridges.tts.port, tts_name),
            ],
        )
    voice = VoiceService(bridges=bridges, announcer=announcer)

    async def stop_on_shutdown(_event: Event) -> None:
        await voice.async_stop()

    entry.async_on_unload(hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, stop_on_shutdown))
    if announcer is not None:
        announcer.async_offer_to_wyoming()
        # mDNS probing takes a second or two; setup does not wait for it.
        voice.announcing = entry.async_create_background_task(
            hass, announcer.async_register(), "spark_control voice announcement"
        )
    return voice


def _who_spoke_hook(
    hass: HomeAssistant, entry: SparkControlConfigEntry
) -> Callable[[bytes, str], None] | None:
    """With a linked add-on gateway, each command's audio goes to its speaker library in the
    background; the gateway answers at once when nobody is enrolled."""
    gateway_url, api_key = entry.data.get(CONF_GATEWAY_URL), entry.data.get(CONF_GATEWAY_API_KEY)
    if not gateway_url or not api_key:
        return None
    from .speakers import async_who_spoke

    @callback
    def on_utterance(wav: bytes, text: str) -> None:
        entry.async_create_background_task(
            hass,
            async_who_spoke(hass, entry.entry_id, gateway_url, api_key, wav, text),
            "spark_control who spoke",
        )

    return on_utterance


def _port_issue_id(entry: SparkControlConfigEntry) -> str:
    return f"{VOICE_PORT_ISSUE}_{entry.entry_id}"


async def async_unload_voice(hass: HomeAssistant, entry: SparkControlConfigEntry) -> None:
    """Stop the voice bridges for this entry and withdraw their announcements."""
    # Options may be changing to fix the ports: the next setup reports again if still taken.
    ir.async_delete_issue(hass, DOMAIN, _port_issue_id(entry))
    if (voice := entry.runtime_data.voice) is not None:
        entry.runtime_data.voice = None
        await voice.async_stop()
