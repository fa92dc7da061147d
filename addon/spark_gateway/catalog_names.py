"""The catalog key of the loaded model, read from Home Assistant's Spark Control model select.

The model catalog lives in the integration (Home Assistant storage); its model select carries
the shown model's catalog key (`qwen36`) in its `catalog_key` attribute. The gateway asks Home
Assistant's REST API to render a template listing the integration's select entities with that
attribute (`POST /api/template`), through the Supervisor proxy or a configured HA URL and token
(the same access as for events). With one cluster there is one model select;
with several, `ha_model_select` names the one in front of this gateway's vLLM. No answer (HA
down, no integration, several selects and none named) means no catalog key, never an error.
"""

from __future__ import annotations

import json
import logging
from typing import Final

import aiohttp

_LOGGER = logging.getLogger(__name__)

_TIMEOUT: Final = aiohttp.ClientTimeout(total=3)
# {entity_id: catalog key or null} of the integration's select entities.
SELECT_KEYS_TEMPLATE: Final = (
    "{% set ns = namespace(found={}) %}"
    "{% for entity in integration_entities('spark_control') if entity.startswith('select.') %}"
    "{% set ns.found = dict(ns.found, **{entity: state_attr(entity, 'catalog_key')}) %}"
    "{% endfor %}{{ ns.found | tojson }}"
)


class CatalogNames:
    """Asks Home Assistant which catalog key the model select shows."""

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

    async def loaded_key(self) -> str | None:
        """The model select's catalog key, or None when Home Assistant cannot say."""
        if not self._api_url or not self._token:
            return None
        try:
            async with self._session.post(
                f"{self._api_url}/template",
                json={"template": SELECT_KEYS_TEMPLATE},
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=_TIMEOUT,
            ) as resp:
                if resp.status >= 300:
                    _LOGGER.debug("Home Assistant refused the template: HTTP %s", resp.status)
                    return None
                keys = json.loads(await resp.text())
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            _LOGGER.debug("cannot read the model select from Home Assistant: %s", err)
            return None
        if not isinstance(keys, dict):
            return None
        if self._entity_id is not None:
            key = keys.get(self._entity_id)
        elif len(keys) == 1:
            (key,) = keys.values()
        else:
            return None  # several clusters: which one is ours is configured, not guessed
        return key if isinstance(key, str) and key else None
