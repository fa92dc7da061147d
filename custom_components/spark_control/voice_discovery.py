"""Announce the voice bridges over mDNS and offer them to Home Assistant's `wyoming` integration."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address

from homeassistant.components import network, zeroconf
from homeassistant.components.network.const import MDNS_TARGET_IP
from homeassistant.config_entries import SOURCE_IGNORE, SOURCE_ZEROCONF
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import discovery_flow
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from homeassistant.util import slugify
from zeroconf import BadTypeInNameException, NonUniqueNameException
from zeroconf.asyncio import AsyncServiceInfo

from .const import LOGGER

WYOMING_DOMAIN = "wyoming"
WYOMING_ZEROCONF_TYPE = "_wyoming._tcp.local."


@dataclass(frozen=True, slots=True)
class BridgeAnnouncement:
    """One bridge as it appears on the LAN: `<instance>._wyoming._tcp.local.` at address:port."""

    instance: str
    address: str
    port: int
    program: str  # the Wyoming program name its Info reports first

    @property
    def wyoming_unique_id(self) -> str:
        """The unique id HA's `wyoming` config flow gives an entry discovered this way."""
        return f"{self.service_name}_{self.program}"

    @property
    def host_label(self) -> str:
        """The instance name as a DNS host label ("Lab Parakeet STT 1a2b" → lab-parakeet-stt-1a2b):
        instance names may hold spaces, host names may not."""
        return slugify(self.instance, separator="-")[:63] or "spark-control"

    @property
    def service_name(self) -> str:
        """The full mDNS service instance name."""
        return f"{self.instance}.{WYOMING_ZEROCONF_TYPE}"

    def service_info(self) -> AsyncServiceInfo:
        """The record registered with HA's shared zeroconf instance."""
        return AsyncServiceInfo(
            WYOMING_ZEROCONF_TYPE,
            self.service_name,
            addresses=[socket.inet_aton(self.address)],
            port=self.port,
            server=f"{self.host_label}.local.",
        )

    def discovery_info(self) -> ZeroconfServiceInfo:
        """The same record in the shape HA's zeroconf discovery hands to config flows."""
        address = ip_address(self.address)
        return ZeroconfServiceInfo(
            ip_address=address,
            ip_addresses=[address],
            port=self.port,
            hostname=f"{self.host_label}.local.",
            type=WYOMING_ZEROCONF_TYPE,
            name=self.service_name,
            properties={},
        )


async def async_lan_address(hass: HomeAssistant) -> str | None:
    """The IPv4 address other LAN hosts reach HA on (never 0.0.0.0 or loopback)."""
    try:
        address = await network.async_get_source_ip(hass, target_ip=MDNS_TARGET_IP)
    except HomeAssistantError as err:
        LOGGER.warning("Cannot find the LAN address to announce the voice bridges: %s", err)
        return None
    parsed = ip_address(address)
    if not isinstance(parsed, IPv4Address) or parsed.is_unspecified or parsed.is_loopback:
        LOGGER.warning("Not announcing the voice bridges on %s: not a LAN address", address)
        return None
    return address


class VoiceAnnouncer:
    """Keeps the bridges' mDNS records registered and their wyoming discovery flows offered."""

    def __init__(self, hass: HomeAssistant, announcements: list[BridgeAnnouncement]) -> None:
        self._hass = hass
        self.announcements = announcements
        self._registered: list[AsyncServiceInfo] = []

    async def async_register(self) -> None:
        """Register every record with HA's shared zeroconf instance and wait until announced."""
        aiozc = await zeroconf.async_get_async_instance(self._hass)
        for announcement in self.announcements:
            info = announcement.service_info()
            try:
                announced = await aiozc.async_register_service(info)
                self._registered.append(info)
                await announced
            except (NonUniqueNameException, BadTypeInNameException) as err:
                LOGGER.warning("Cannot announce %s: %r", announcement.service_name, err)

    @callback
    def async_offer_to_wyoming(self) -> None:
        """Start a discovered `wyoming` flow per bridge, so the user only clicks Configure.

        A bridge the user already added is instead kept pointing at the current address and
        port (the `wyoming` flow itself does not update an entry it finds configured).
        """
        entries = {
            entry.unique_id: entry
            for entry in self._hass.config_entries.async_entries(WYOMING_DOMAIN)
            if entry.unique_id
        }
        for announcement in self.announcements:
            if (entry := entries.get(announcement.wyoming_unique_id)) is not None:
                if entry.source == SOURCE_IGNORE:
                    continue  # the user said no to this bridge
                location = {CONF_HOST: announcement.address, CONF_PORT: announcement.port}
                if {key: entry.data.get(key) for key in location} != location:
                    LOGGER.info("Wyoming entry %s now at %s", entry.title, location)
                    self._hass.config_entries.async_update_entry(
                        entry, data={**entry.data, **location}
                    )
                    self._hass.config_entries.async_schedule_reload(entry.entry_id)
                continue
            discovery_flow.async_create_flow(
                self._hass,
                WYOMING_DOMAIN,
                context={"source": SOURCE_ZEROCONF},
                data=announcement.discovery_info(),
            )

    async def async_withdraw(self) -> None:
        """Unregister the records and drop discovery offers nobody accepted yet."""
        flows = self._hass.config_entries.flow
        ours = {announcement.wyoming_unique_id for announcement in self.announcements}
        for flow in flows.async_progress_by_handler(WYOMING_DOMAIN, include_uninitialized=True):
            if flow["context"].get("unique_id") in ours:
                with contextlib.suppress(Exception):
                    flows.async_abort(flow["flow_id"])
        registered, self._registered = self._registered, []
        if not registered:
            return
        aiozc = await zeroconf.async_get_async_instance(self._hass)
        for info in registered:
            # Zeroconf may already be closing when HA stops; the goodbye is best effort then.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(await aiozc.async_unregister_service(info), timeout=5)
