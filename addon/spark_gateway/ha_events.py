"""Events to Home Assistant: wedge reports and forwarded health reports.

Under Supervisor the Core API is reached at http://supervisor/core/api with SUPERVISOR_TOKEN;
standalone, a configured HA URL and long-lived token are used. Without either, events are only
logged. Delivery never blocks or fails a client request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any, Final

import aiohttp

from .config import SUPERVISOR_CORE_URL, GatewayConfig, supervisor_token

_LOGGER = logging.getLogger(__name__)

EVENT_WEDGE_REPORT: Final = "spark_control_wedge_report"
EVENT_HEALTH_REPORT: Final = "spark_control_health_report"
_TIMEOUT: Final = aiohttp.ClientTimeout(total=10)
# One wedge report per service in this window: a burst of failing requests is one incident,
# and the integration's recovery already runs a probe for it.
WEDGE_REPORT_INTERVAL_S: Final = 30.0


def core_api_url(ha_url: str) -> str:
    """HA's REST API base from its URL: `http://ha:8123` and `http://ha:8123/api` both work."""
    base = ha_url.rstrip("/")
    return base if base.endswith("/api") else f"{base}/api"


class HaNotifier:
    """Fires events on Home Assistant's bus through its REST API."""

    def __init__(self, session: aiohttp.ClientSession, api_url: str | None, token: str | None):
        self._session = session
        self._api_url = api_url.rstrip("/") if api_url else None
        self._token = token
        self._pending: set[asyncio.Task[bool]] = set()
        self._last_wedge_report: dict[str, float] = {}
        self.fired: int = 0  # delivered events, for metrics and tests

    @classmethod
    def from_config(cls, session: aiohttp.ClientSession, config: GatewayConfig) -> HaNotifier:
        """Prefer an explicit HA URL and token; else the Supervisor proxy when running as add-on."""
        if config.ha_url and config.ha_token:
            return cls(session, core_api_url(config.ha_url), config.ha_token)
        token = supervisor_token()
        if token:
            return cls(session, SUPERVISOR_CORE_URL, token)
        return cls(session, None, None)

    @property
    def api_url(self) -> str | None:
        """Where events go (HA's REST API base), or None when no HA is configured."""
        return self._api_url

    @property
    def token(self) -> str | None:
        """The token HA's REST API takes (Supervisor's or the configured one)."""
        return self._token

    @property
    def enabled(self) -> bool:
        """Whether events reach HA at all."""
        return self._api_url is not None and self._token is not None

    async def fire(self, event_type: str, data: Mapping[str, Any]) -> bool:
        """POST the event; True when HA accepted it. Errors are logged, never raised."""
        if not self.enabled:
            _LOGGER.info(
                "no Home Assistant API configured; event %s not sent: %s", event_type, dict(data)
            )
            return False
        url = f"{self._api_url}/events/{event_type}"
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            async with self._session.post(
                url, json=dict(data), headers=headers, timeout=_TIMEOUT
            ) as resp:
                if resp.status >= 300:
                    _LOGGER.warning(
                        "Home Assistant refused event %s: HTTP %s", event_type, resp.status
                    )
                    return False
        except (aiohttp.ClientError, TimeoutError) as err:
            _LOGGER.warning("could not send event %s to Home Assistant: %s", event_type, err)
            return False
        self.fired += 1
        return True

    def fire_in_background(self, event_type: str, data: Mapping[str, Any]) -> None:
        """Send without making the caller wait (the client gets its answer at once)."""
        task = asyncio.create_task(self.fire(event_type, data))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Wait for events still in flight (on shutdown and in tests)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def report_wedge(self, service: str, error: str, upstream: str) -> bool:
        """Tell HA that `service` looks wedged so its recovery runs a deep probe now.

        `upstream` is the service's URL as this gateway reaches it: it names the cluster, so
        with several clusters in HA only the one serving that URL probes and restarts.
        Returns False when a report for the service went out less than 30 s ago.
        """
        now = time.monotonic()
        last = self._last_wedge_report.get(service)
        if last is not None and now - last < WEDGE_REPORT_INTERVAL_S:
            return False
        self._last_wedge_report[service] = now
        self.fire_in_background(
            EVENT_WEDGE_REPORT,
            {"service": service, "error": error, "source": "gateway", "upstream": upstream},
        )
        return True
