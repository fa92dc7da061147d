"""HTTP status endpoints of vLLM, Parakeet and Magpie, through an injected aiohttp session."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

import aiohttp

from .errors import ServiceUnreachable
from .service_keys import MAGPIE, PARAKEET, VLLM
from .validation import validate_host, validate_port

__all__ = ["MAGPIE", "PARAKEET", "VLLM", "Endpoint", "ServiceApi", "VllmState"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a service listens."""

    host: str
    port: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "host", validate_host(self.host))
        object.__setattr__(self, "port", validate_port(self.port))

    @property
    def url(self) -> str:
        """Base URL without a trailing slash (IPv6 literals bracketed)."""
        host = self.host
        try:
            if ipaddress.ip_address(host).version == 6:
                host = f"[{host}]"
        except ValueError:
            pass
        return f"http://{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class VllmState:
    """vLLM as seen from outside: `loading` means up but `/health` not yet 200."""

    healthy: bool
    loading: bool
    models: list[str]
    max_model_len: int | None


class ServiceApi:
    """Reads the services' health over HTTP; every call is bounded by `timeout` seconds.

    Unreachable (refused, timed out, reset, garbage) raises ServiceUnreachable; a server
    that answers but is not healthy returns False / `healthy=False`.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        endpoints: dict[str, Endpoint],
        timeout: float = 5.0,
    ) -> None:
        self._session = session
        self.endpoints = dict(endpoints)
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def url(self, service: str, path: str = "") -> str:
        """Absolute URL of `path` on `service` (KeyError if the service is not configured)."""
        return self.endpoints[service].url + path

    async def vllm_state(self) -> VllmState:
        """`/health`, then `/v1/models` once healthy."""
        status, _ = await self._get(VLLM, "/health")
        if status != 200:
            return VllmState(healthy=False, loading=status == 503, models=[], max_model_len=None)
        status, body = await self._get(VLLM, "/v1/models", want_json=True)
        if status != 200 or not isinstance(body, dict):
            return VllmState(healthy=True, loading=False, models=[], max_model_len=None)
        cards = [card for card in body.get("data", []) if isinstance(card, dict)]
        models = [str(card["id"]) for card in cards if "id" in card]
        lengths = [card.get("max_model_len") for card in cards]
        max_len = next((int(n) for n in lengths if isinstance(n, int)), None)
        return VllmState(healthy=True, loading=False, models=models, max_model_len=max_len)

    async def vllm_healthy(self) -> bool:
        """Just `/health` == 200 (cheap; used right after the startup line)."""
        status, _ = await self._get(VLLM, "/health")
        return status == 200

    async def vllm_metrics_text(self) -> str:
        """Raw Prometheus text of `/metrics` (parse with `metrics.parse_vllm_metrics`)."""
        status, body = await self._get(VLLM, "/metrics")
        if status != 200 or not isinstance(body, str):
            raise ServiceUnreachable(VLLM, self.url(VLLM, "/metrics"), f"HTTP {status}")
        return body

    async def vllm_version(self) -> str | None:
        """vLLM's `/version` (`{"version": "0.11.0"}`); None when it does not say."""
        status, body = await self._get(VLLM, "/version", want_json=True)
        if status != 200 or not isinstance(body, dict):
            return None
        version = body.get("version")
        return str(version)[:64] if isinstance(version, str | int | float) else None

    async def parakeet_healthy(self) -> bool:
        """Parakeet's `/health` answers 200."""
        status, _ = await self._get(PARAKEET, "/health")
        return status == 200

    async def magpie_ready(self) -> bool:
        """Magpie's `/v1/health/ready` answers 200."""
        status, _ = await self._get(MAGPIE, "/v1/health/ready")
        return status == 200

    async def _get(self, service: str, path: str, *, want_json: bool = False) -> tuple[int, Any]:
        url = self.url(service, path)
        try:
            async with self._session.get(url, timeout=self._timeout) as response:
                if want_json:
                    if response.status != 200:
                        return response.status, None
                    return response.status, await response.json(content_type=None)
                return response.status, await response.text()
        except TimeoutError as err:
            raise ServiceUnreachable(service, url, "timed out") from err
        except aiohttp.ClientConnectorError as err:
            raise ServiceUnreachable(service, url, str(err), refused=True) from err
        except (aiohttp.ClientError, ValueError) as err:
            raise ServiceUnreachable(service, url, str(err) or type(err).__name__) from err
