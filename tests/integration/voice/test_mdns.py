"""The bridges' mDNS records resolve on the real network the way HA's zeroconf browser sees them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest.mock import patch

import pytest
import pytest_socket
import zeroconf
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from custom_components.spark_control.voice_discovery import (
    WYOMING_ZEROCONF_TYPE,
    BridgeAnnouncement,
)
from tests.integration.voice.ha_setup import lan_address

# Taken at collection, before any HA test runs: HA's zeroconf setup replaces these process-wide
# so that integrations cannot open a second instance (this test needs two of its own).
_ZEROCONF_INIT = zeroconf.Zeroconf.__init__


@pytest.fixture
def standalone_zeroconf() -> Iterator[None]:
    def new(cls: type[zeroconf.Zeroconf], *_args: Any, **_kwargs: Any) -> zeroconf.Zeroconf:
        return object.__new__(cls)

    with (
        patch.object(zeroconf.Zeroconf, "__new__", new),
        patch.object(zeroconf.Zeroconf, "__init__", _ZEROCONF_INIT),
    ):
        yield


@pytest.mark.usefixtures("standalone_zeroconf")
async def test_announcement_resolves_over_multicast_with_the_lan_address() -> None:
    pytest_socket.socket_allow_hosts(["127.0.0.1", "224.0.0.251"])
    address = lan_address()
    # A cluster's name with a space, as the integration announces it.
    announcement = BridgeAnnouncement("Lab Parakeet STT test1234", address, 10310, "Lab Parakeet")
    announcer = AsyncZeroconf(interfaces=[address], ip_version=IPVersion.V4Only)
    browser = AsyncZeroconf(interfaces=[address], ip_version=IPVersion.V4Only)
    info = announcement.service_info()
    try:
        await (await announcer.async_register_service(info))
        found = AsyncServiceInfo(WYOMING_ZEROCONF_TYPE, announcement.service_name)
        assert await found.async_request(browser.zeroconf, 3000)
        assert found.parsed_addresses() == [address]
        assert found.port == 10310
        assert address != "0.0.0.0"
    finally:
        await browser.async_close()
        await (await announcer.async_unregister_service(info))
        await announcer.async_close()

    discovered = announcement.discovery_info()
    assert discovered.host == address
    assert discovered.port == 10310
    assert discovered.type == WYOMING_ZEROCONF_TYPE
    assert discovered.name == "Lab Parakeet STT test1234._wyoming._tcp.local."
    assert discovered.hostname == "lab-parakeet-stt-test1234.local."
    assert announcement.wyoming_unique_id == f"{discovered.name}_Lab Parakeet"
