"""Which node a service runs on: host names and IP addresses compared the way a user means them.

`spark-2.LAN.` and `spark-2.lan` are the same host, so are `[fe80::1]` and `fe80:0::1`; a host
name and an IP address are the same host when the name resolves to that address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

RESOLVE_TIMEOUT = 5.0


def host_identity(host: str) -> str:
    """A canonical spelling: brackets and a trailing dot dropped, lower case, IPs normalised."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text.rstrip(".").lower()


def same_host(a: str, b: str) -> bool:
    """Whether two spellings name the same host without asking DNS."""
    return host_identity(a) == host_identity(b)


async def resolve(host: str) -> frozenset[str]:
    """The IP addresses a host name resolves to (the address itself for an IP; empty when the
    name does not resolve in time)."""
    identity = host_identity(host)
    try:
        return frozenset({str(ipaddress.ip_address(identity))})
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            infos = await loop.getaddrinfo(identity, None, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError):
        return frozenset()
    return frozenset(host_identity(str(info[4][0])) for info in infos)
