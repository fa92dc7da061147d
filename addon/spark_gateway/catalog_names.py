"""The model catalog as Home Assistant's Spark Control model select shows it, and swaps there.

The model catalog lives in the integration (Home Assistant storage); its model select carries
the shown model's catalog key (`qwen36`) in its `catalog_key` attribute and the whole catalog
(key -> display name and repo id) in its `catalog` attribute. The gateway asks Home Assistant's
REST API to render a template listing the integration's select entities with those attributes
(`POST /api/template`), through the Supervisor proxy or a configured HA URL and token (the same
access as for events). With one cluster there is one model select; with several,
`ha_model_select` names the one in front of this gateway's vLLM. No answer (HA down, no
integration, several selects and none named) means no catalog, never an error.

A swap is asked for with the integration's own action (`spark_control.swap_model` with
`wait: true`), so Home Assistant runs it exactly as a tap on the select would (progress, events,
fallback) and the call returns once vLLM serves the model, or fails. It is called over Home
Assistant's WebSocket API (`<api>/websocket`, which the Supervisor proxies too): the REST API
answers a failed action with a bare 500, the WebSocket API with the integration's translated
message and key (`swap_in_progress` when another swap runs).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, Final

import aiohttp

_LOGGER = logging.getLogger(__name__)

_TIMEOUT: Final = aiohttp.ClientTimeout(total=3)
# The integration ends a swap after its own timeout (15 min by default); this only bounds a
# Home Assistant that never answers.
SWAP_CALL_TIMEOUT_S: Final = 3600.0
_WS_TIMEOUT: Final = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5)
_WS_HANDSHAKE_S: Final = 10.0  # connect, auth_required, auth_ok
# Whether the swap sensor beside a select (the one entity of its device with a `log_lines`
# attribute) says a swap runs: true or false.
SWAP_RUNNING_TEMPLATE: Final = (
    "{% set ns = namespace(running=false) %}"
    "{% for entity in device_entities(device_id(select)) if entity.startswith('sensor.') "
    "and state_attr(entity, 'log_lines') is not none %}"
    "{% set ns.running = states(entity) in ['stopping', 'starting', 'loading'] %}"
    "{% endfor %}{{ ns.running | tojson }}"
)
# {entity_id: {"key", "entry", "catalog"}} of the integration's select entities.
SELECTS_TEMPLATE: Final = (
    "{% set ns = namespace(found={}) %}"
    "{% for entity in integration_entities('spark_control') if entity.startswith('select.') %}"
    "{% set ns.found = dict(ns.found, **{entity: {"
    "'key': state_attr(entity, 'catalog_key'), 'entry': config_entry_id(entity), "
    "'catalog': state_attr(entity, 'catalog')}}) %}"
    "{% endfor %}{{ ns.found | tojson }}"
)


@dataclass(frozen=True, slots=True)
class CatalogModel:
    """One model of the integration's catalog."""

    key: str
    name: str  # the display name the model select shows
    repo_id: str  # what vLLM serves it as


@dataclass(frozen=True, slots=True)
class ModelSelect:
    """What the model select in front of this gateway's vLLM says."""

    entity_id: str
    shown_key: str | None  # the swap's target while one runs, else the served model's key
    config_entry_id: str | None  # the cluster, as `spark_control.swap_model` names it
    catalog: dict[str, CatalogModel]

    def key_for(self, repo_id: str) -> str | None:
        """The catalog key of the model vLLM serves as `repo_id` (None: not in the catalog)."""
        for model in self.catalog.values():
            if model.repo_id == repo_id:
                return model.key
        return None


class SwapRefused(Exception):
    """Home Assistant did not swap; the message says why, as far as it can be known.

    `busy`: it refused because a swap started elsewhere (the select, an automation) runs.
    """

    def __init__(self, message: str, *, busy: bool = False) -> None:
        super().__init__(message)
        self.busy = busy


class CatalogNames:
    """Asks Home Assistant what the model select shows, and asks it to swap."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        api_url: str | None,
        token: str | None,
        *,
        entity_id: str | None = None,
    ) -> None:
        self._session = session
        self._api_url = api_url
        self._token = token
        self._entity_id = entity_id

    @property
    def reachable(self) -> bool:
        """Whether a Home Assistant API is configured at all (Supervisor's or a URL + token)."""
        return bool(self._api_url and self._token)

    async def loaded_key(self) -> str | None:
        """The model select's catalog key, or None when Home Assistant cannot say."""
        select = await self.model_select()
        return select.shown_key if select is not None else None

    async def model_select(self) -> ModelSelect | None:
        """The model select's attributes, or None when Home Assistant cannot say."""
        found = await self._render(SELECTS_TEMPLATE)
        if not isinstance(found, dict):
            return None
        if self._entity_id is not None:
            entity_id = self._entity_id
        elif len(found) == 1:
            (entity_id,) = found
        else:
            return None  # several clusters: which one is ours is configured, not guessed
        raw = found.get(entity_id)
        return _model_select(entity_id, raw) if isinstance(raw, dict) else None

    async def swap_running(self, select: ModelSelect) -> bool:
        """Whether Home Assistant's swap sensor beside `select` says a swap runs (False when
        Home Assistant cannot say)."""
        return await self._render(SWAP_RUNNING_TEMPLATE, select=select.entity_id) is True

    async def swap(self, select: ModelSelect, key: str) -> None:
        """Ask Home Assistant to swap to `key` and wait until vLLM serves it.

        Raises SwapRefused with Home Assistant's reason when the swap failed or was refused.
        """
        if not self.reachable or select.config_entry_id is None:
            raise SwapRefused("Home Assistant's API is not reachable from the gateway")
        call = {
            "id": 1,
            "type": "call_service",
            "domain": "spark_control",
            "service": "swap_model",
            "service_data": {"cluster": select.config_entry_id, "model": key, "wait": True},
        }
        try:
            # No heartbeat of ours: Home Assistant pings every 55 s, answered while we read.
            async with self._session.ws_connect(
                f"{self._api_url}/websocket", timeout=_WS_TIMEOUT
            ) as ws:
                async with asyncio.timeout(_WS_HANDSHAKE_S):
                    await ws.receive_json()  # auth_required
                    await ws.send_json({"type": "auth", "access_token": self._token})
                    auth = await ws.receive_json()
                if not isinstance(auth, dict) or auth.get("type") != "auth_ok":
                    raise SwapRefused("Home Assistant refused the gateway's token")
                await ws.send_json(call)
                result = await ws.receive_json(timeout=SWAP_CALL_TIMEOUT_S)
        except (aiohttp.ClientError, TimeoutError, ValueError, TypeError) as err:
            raise SwapRefused(f"Home Assistant did not answer the swap request ({err!r})") from err
        if not isinstance(result, dict):
            raise SwapRefused("Home Assistant answered the swap request with something else")
        if result.get("success") is True:
            return
        error = result.get("error")
        error = error if isinstance(error, dict) else {}
        raise SwapRefused(
            str(error.get("message") or "Home Assistant did not say why"),
            busy=error.get("translation_key") == "swap_in_progress",
        )

    async def _render(self, template: str, **variables: str) -> Any:
        """A template rendered by Home Assistant and parsed as JSON; None when it cannot."""
        if not self.reachable:
            return None
        try:
            async with self._session.post(
                f"{self._api_url}/template",
                json={"template": template, "variables": variables},
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=_TIMEOUT,
            ) as resp:
                if resp.status >= 300:
                    _LOGGER.debug("Home Assistant refused the template: HTTP %s", resp.status)
                    return None
                return json.loads(await resp.text())
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            _LOGGER.debug("cannot read the model select from Home Assistant: %s", err)
            return None


def _model_select(entity_id: str, raw: dict[str, Any]) -> ModelSelect:
    key = raw.get("key")
    entry = raw.get("entry")
    catalog: dict[str, CatalogModel] = {}
    models = raw.get("catalog")
    if isinstance(models, dict):  # absent from integrations older than the attribute
        for model_key, model in models.items():
            if isinstance(model, dict) and isinstance(model.get("repo_id"), str):
                name = model.get("name")
                catalog[model_key] = CatalogModel(
                    model_key, name if isinstance(name, str) else model_key, model["repo_id"]
                )
    return ModelSelect(
        entity_id=entity_id,
        shown_key=key if isinstance(key, str) and key else None,
        config_entry_id=entry if isinstance(entry, str) and entry else None,
        catalog=catalog,
    )
