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
fallback) and the call returns once vLLM serves the model, or fails. Home Assistant's REST API
answers a failed action with a bare 500, so the reason is read afterwards from the swap sensor
on the select's device (its state and last log line).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Final

import aiohttp

_LOGGER = logging.getLogger(__name__)

_TIMEOUT: Final = aiohttp.ClientTimeout(total=3)
# The integration ends a swap after its own timeout (15 min by default); this only bounds a
# Home Assistant that never answers.
SWAP_CALL_TIMEOUT: Final = aiohttp.ClientTimeout(total=3600, sock_connect=5)
# The swap sensor's states while a swap runs.
SWAP_RUNNING_STATES: Final = frozenset({"stopping", "starting", "loading"})
# {entity_id: {"key", "entry", "catalog"}} of the integration's select entities.
SELECTS_TEMPLATE: Final = (
    "{% set ns = namespace(found={}) %}"
    "{% for entity in integration_entities('spark_control') if entity.startswith('select.') %}"
    "{% set ns.found = dict(ns.found, **{entity: {"
    "'key': state_attr(entity, 'catalog_key'), 'entry': config_entry_id(entity), "
    "'catalog': state_attr(entity, 'catalog')}}) %}"
    "{% endfor %}{{ ns.found | tojson }}"
)
# The swap sensor beside a select (the one entity of its device with a `log_lines` attribute):
# {"status", "target", "last_log_line"} or null.
SWAP_SENSOR_TEMPLATE: Final = (
    "{% set ns = namespace(found=none) %}"
    "{% for entity in device_entities(device_id(select)) if entity.startswith('sensor.') "
    "and state_attr(entity, 'log_lines') is not none %}"
    "{% set ns.found = {'status': states(entity), 'target': state_attr(entity, 'target_model'), "
    "'last_log_line': state_attr(entity, 'last_log_line')} %}"
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

    async def swap(self, select: ModelSelect, key: str) -> None:
        """Ask Home Assistant to swap to `key` and wait until vLLM serves it.

        Raises SwapRefused with Home Assistant's reason when the swap failed or was refused.
        """
        if not self.reachable or select.config_entry_id is None:
            raise SwapRefused("Home Assistant's API is not reachable from the gateway")
        try:
            async with self._session.post(
                f"{self._api_url}/services/spark_control/swap_model",
                json={"cluster": select.config_entry_id, "model": key, "wait": True},
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=SWAP_CALL_TIMEOUT,
            ) as resp:
                status = resp.status
                await resp.read()
        except (aiohttp.ClientError, TimeoutError) as err:
            raise SwapRefused(f"Home Assistant did not answer the swap request ({err!r})") from err
        if status < 300:
            return
        raise await self._swap_failure(select, key, status)

    async def _swap_failure(self, select: ModelSelect, key: str, status: int) -> SwapRefused:
        """Why the swap failed, from the swap sensor; the bare HTTP status when it cannot say."""
        sensor = await self._render(SWAP_SENSOR_TEMPLATE, select=select.entity_id)
        if not isinstance(sensor, dict):
            return SwapRefused(f"Home Assistant answered HTTP {status}")
        state = sensor.get("status")
        if state in SWAP_RUNNING_STATES:
            return SwapRefused("another swap is running in Home Assistant", busy=True)
        line = sensor.get("last_log_line")
        if state == "failed":
            return SwapRefused(f"the swap to {key!r} failed in Home Assistant: {line or '?'}")
        if state == "ready" and (target := sensor.get("target")) != key:
            # The option to fall back to the last good model did: the failure was before it.
            return SwapRefused(
                f"the swap to {key!r} failed in Home Assistant, which loaded {target!r} again "
                "(its swap sensor and logbook say why)"
            )
        return SwapRefused(f"Home Assistant refused the swap (HTTP {status})")

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
