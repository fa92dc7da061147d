"""Checks the config flows run before saving anything: SSH to every node, then the endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .cluster_config import build_cluster_config
from .const import SERVICE_MAGPIE, SERVICE_PARAKEET, SERVICE_VLLM
from .sparklib.cluster import ClusterClient
from .sparklib.errors import ServiceUnreachable
from .sparklib.http_api import ServiceApi


async def async_check_ssh(hass: HomeAssistant, data: Mapping[str, Any]) -> dict[str, str]:
    """Connect to every node, run the harmless probe, pin unknown host keys.

    Returns the host keys to store, by node string. Raises sparklib's errors, whose `host`
    is the node string that failed.
    """
    client = ClusterClient(build_cluster_config(data), async_get_clientsession(hass))
    try:
        await client.validate()
        pinned = client.host_keys
    finally:
        await client.close()
    return pinned


async def async_unreachable_services(hass: HomeAssistant, data: Mapping[str, Any]) -> list[str]:
    """The services whose endpoint does not answer at all (an unhealthy answer is fine)."""
    api = ServiceApi(async_get_clientsession(hass), build_cluster_config(data).endpoints)
    probes = {
        SERVICE_VLLM: api.vllm_state,
        SERVICE_PARAKEET: api.parakeet_healthy,
        SERVICE_MAGPIE: api.magpie_ready,
    }
    results = await asyncio.gather(*(probe() for probe in probes.values()), return_exceptions=True)
    unreachable: list[str] = []
    for service, result in zip(probes, results, strict=True):
        if isinstance(result, ServiceUnreachable):
            unreachable.append(service)
        elif isinstance(result, BaseException):
            raise result
    return unreachable
