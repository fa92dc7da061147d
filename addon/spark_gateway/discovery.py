"""Announcing the gateway to Home Assistant through Supervisor discovery."""

from __future__ import annotations

import logging
import socket
from typing import Final

import aiohttp

from .config import GatewayConfig

_LOGGER = logging.getLogger(__name__)

SERVICE: Final = "spark_control"
SUPERVISOR_URL: Final = "http://supervisor"


def gateway_url(config: GatewayConfig) -> str:
    """The URL HA should use: the configured public URL, else this container's hostname."""
    return config.public_url or f"http://{socket.gethostname()}:{config.port}"


async def announce(
    session: aiohttp.ClientSession,
    *,
    token: str,
    url: str,
    api_key: str | None,
    supervisor_url: str = SUPERVISOR_URL,
) -> str | None:
    """POST the discovery message; return its uuid, or None when Supervisor refused it."""
    payload = {"service": SERVICE, "config": {"url": url, "api_key": api_key}}
    try:
        async with session.post(
            f"{supervisor_url}/discovery",
            json=payload,
            headers={"Authorization": f"Bearer {token}"},
            timeout=aiohttp.ClientTimeout(total=15),
        ) as resp:
            body = await resp.json(content_type=None)
            if resp.status >= 300 or not isinstance(body, dict):
                _LOGGER.warning("Supervisor refused discovery: HTTP %s %s", resp.status, body)
                return None
    except (aiohttp.ClientError, TimeoutError, ValueError) as err:
        _LOGGER.warning("could not announce the gateway to Home Assistant: %s", err)
        return None
    data = body.get("data")
    uuid = data.get("uuid") if isinstance(data, dict) else None
    _LOGGER.info("announced the gateway at %s to Home Assistant", url)
    return str(uuid) if uuid else None
