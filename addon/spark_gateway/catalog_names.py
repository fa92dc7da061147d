"""The model catalog as Home Assistant's Spark Control model select shows it, and swaps there.

The model catalog lives in the integration (Home Assistant storage); its model select carries
the shown model's catalog key (`qwen36`) in its `catalog_key` attribute, the key of the model
vLLM served last in `last_served_key` (kept while vLLM is stopped) and the whole catalog
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
message and key (`swap_in_progress` when another swap runs). The same connection subscribes to
the swap sensor beside the select (`subscribe_entities`), so a swap that must wait for one
started in Home Assistant learns the moment that one ends, without polling. Whether vLLM is
stopped (not restarting) is read from its running switch beside the select (`docker ps`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

import aiohttp

from . import ha_websocket
from .ha_websocket import HaConnectionLost, HaTokenRefused, HaWebSocket

_LOGGER = logging.getLogger(__name__)

_TIMEOUT_S: Final = 3.0
_TIMEOUT: Final = aiohttp.ClientTimeout(total=_TIMEOUT_S)
# The integration ends a swap after its own timeout (15 min by default); this only bounds a
# Home Assistant that never answers.
SWAP_CALL_TIMEOUT_S: Final = 3600.0
# The swap sensor beside a select (the one entity of its device with a `log_lines` attribute),
# or null.
SWAP_SENSOR_TEMPLATE: Final = (
    "{% set ns = namespace(sensor=none) %}"
    "{% for entity in device_entities(device_id(select)) if entity.startswith('sensor.') "
    "and state_attr(entity, 'log_lines') is not none %}"
    "{% set ns.sensor = entity %}"
    "{% endfor %}{{ ns.sensor | tojson }}"
)
# The swap sensor's phases while a swap runs (read only when it has no `running` attribute).
_RUNNING_PHASES: Final = frozenset({"stopping", "starting", "loading"})
# The state of vLLM's running switch beside a select (`docker ps`: "on" while its container
# runs, "off" once stopped), or null.
VLLM_SWITCH_TEMPLATE: Final = (
    "{% set ns = namespace(state=none) %}"
    "{% for entity in device_entities(device_id(select)) if entity.startswith('switch.') %}"
    "{% set ns.state = states(entity) %}"
    "{% endfor %}{{ ns.state | tojson }}"
)
# {entity_id: {"key", "last", "entry", "catalog"}} of the integration's select entities.
SELECTS_TEMPLATE: Final = (
    "{% set ns = namespace(found={}) %}"
    "{% for entity in integration_entities('spark_control') if entity.startswith('select.') %}"
    "{% set ns.found = dict(ns.found, **{entity: {"
    "'key': state_attr(entity, 'catalog_key'), 'last': state_attr(entity, 'last_served_key'), "
    "'entry': config_entry_id(entity), 'catalog': state_attr(entity, 'catalog')}}) %}"
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
    # The catalog key of the model vLLM served last, kept while it is stopped (None: unknown,
    # or an integration older than the attribute).
    last_served_key: str | None
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

    async def vllm_stopped(self) -> bool:
        """Whether Home Assistant shows vLLM's container stopped and no swap running."""
        return await self.select_if_vllm_stopped() is not None

    async def select_if_vllm_stopped(self) -> ModelSelect | None:
        """The model select, when Home Assistant shows vLLM's container stopped (its running
        switch off) and no swap running (the select shows no model); else None, also when
        Home Assistant cannot say."""
        select = await self.model_select()
        if select is None or select.shown_key is not None:
            return None
        state = await self._render(VLLM_SWITCH_TEMPLATE, select=select.entity_id)
        return select if state == "off" else None

    @asynccontextmanager
    async def swap_session(self, select: ModelSelect) -> AsyncIterator[SwapSession]:
        """A WebSocket connection to Home Assistant watching the swap sensor beside `select`.

        HaConnectionLost when Home Assistant cannot be reached (or drops the connection while
        the session is used), SwapRefused when it refuses the token.
        """
        if self._api_url is None or self._token is None or select.config_entry_id is None:
            raise SwapRefused("Home Assistant's API is not reachable from the gateway")
        sensor = await self._render(SWAP_SENSOR_TEMPLATE, select=select.entity_id)
        try:
            async with ha_websocket.connect(self._session, self._api_url, self._token) as ws:
                session = SwapSession(ws, select, sensor if isinstance(sensor, str) else None)
                await session.watch()
                yield session
        except HaTokenRefused as err:
            raise SwapRefused(str(err)) from err

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


class SwapSession:
    """Home Assistant's swap sensor as its WebSocket subscription tells it, and swaps asked
    for over the same connection (see `CatalogNames.swap_session`)."""

    def __init__(self, ws: HaWebSocket, select: ModelSelect, sensor: str | None) -> None:
        self._ws = ws
        self._select = select
        self.sensor = sensor  # None: Home Assistant showed no swap sensor (nothing to wait on)
        self._phase: str | None = None
        self._attributes: dict[str, Any] = {}

    @property
    def swap_running(self) -> bool:
        """Whether the swap sensor says a swap runs: its `running` attribute (the claim, from
        the request until the swap's events are fired), else its phase."""
        running = self._attributes.get("running")
        if isinstance(running, bool):
            return running
        return self._phase in _RUNNING_PHASES

    async def watch(self) -> None:
        """Subscribe to the sensor's state; its current state has arrived on return."""
        if self.sensor is None:
            return
        reply = await self._ws.command(
            {"type": "subscribe_entities", "entity_ids": [self.sensor]},
            timeout=_TIMEOUT_S,
            on_event=self._on_entities,
        )
        if reply.get("success") is not True:
            raise HaConnectionLost(f"Home Assistant refused to show {self.sensor}: {reply!r}")
        await self._ws.next_event()  # the current state, sent right after the result

    async def next_change(self) -> None:
        """Return once the sensor changed (its phase, attributes or log)."""
        await self._ws.next_event()

    async def swap(self, key: str) -> None:
        """Ask Home Assistant to swap to `key` (`spark_control.swap_model`, `wait: true`) and
        wait until vLLM serves it.

        Raises SwapRefused with Home Assistant's reason when the swap failed or was refused.
        """
        call = {
            "type": "call_service",
            "domain": "spark_control",
            "service": "swap_model",
            "service_data": {"cluster": self._select.config_entry_id, "model": key, "wait": True},
        }
        try:
            result = await self._ws.command(call, timeout=SWAP_CALL_TIMEOUT_S)
        except HaConnectionLost as err:
            raise SwapRefused(
                f"lost Home Assistant's WebSocket API during the swap request ({err}); "
                "the swap may still go on in Home Assistant"
            ) from err
        except TimeoutError as err:
            raise SwapRefused(
                f"Home Assistant did not answer the swap request within {SWAP_CALL_TIMEOUT_S:g} s"
            ) from err
        if result.get("success") is True:
            return
        error = result.get("error")
        error = error if isinstance(error, dict) else {}
        raise SwapRefused(
            str(error.get("message") or "Home Assistant did not say why"),
            busy=error.get("translation_key") == "swap_in_progress",
        )

    def _on_entities(self, event: dict[str, Any]) -> None:
        """A `subscribe_entities` event: states added (`a`), changed (`c`: `+` new values,
        `-` removed attributes) or removed (`r`)."""
        added = event.get("a")
        if isinstance(added, dict) and isinstance(state := added.get(self.sensor), dict):
            self._phase = _text(state.get("s"))
            attributes = state.get("a")
            self._attributes = dict(attributes) if isinstance(attributes, dict) else {}
        changed = event.get("c")
        if isinstance(changed, dict) and isinstance(diff := changed.get(self.sensor), dict):
            new = diff.get("+")
            if isinstance(new, dict):
                if "s" in new:
                    self._phase = _text(new["s"])
                if isinstance(attributes := new.get("a"), dict):
                    self._attributes.update(attributes)
            gone = diff.get("-")
            if isinstance(gone, dict) and isinstance(names := gone.get("a"), list):
                for name in names:
                    self._attributes.pop(name, None)
        removed = event.get("r")
        if isinstance(removed, list) and self.sensor in removed:  # the entry was unloaded
            self._phase = None
            self._attributes = {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _model_select(entity_id: str, raw: dict[str, Any]) -> ModelSelect:
    key = raw.get("key")
    last = raw.get("last")
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
        last_served_key=last if isinstance(last, str) and last in catalog else None,
        config_entry_id=entry if isinstance(entry, str) and entry else None,
        catalog=catalog,
    )
