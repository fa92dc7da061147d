"""The chat model vLLM serves, and the names a client may use for it.

vLLM knows its model only by the id it was started with (a Hugging Face repo id), which changes
with every swap. Clients may also say `current` (whatever is loaded) or the catalog key of the
loaded model (from Home Assistant's model select, see `catalog_names.py`); a catalog key of a
model that is not loaded is refused, unless `swap_on_request` lets it start a swap
(`model_swap.py`). The gateway rewrites such a name to vLLM's id before relaying, so vLLM's
answer carries the real model in its `model` field.

The served ids are cached: they change only across a vLLM restart, which the relay notices (a
refused connection, a 503 while loading, a 404 for a rewritten name) and answers with `forget()`.
The keyless listings re-read them, but at most every `LISTING_MAX_AGE_S` and in one fetch for
all callers at once: a client polling `/v1/models` must not turn into one vLLM request and one
Home Assistant template render per poll.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any, Final

from .catalog_names import CatalogModel, CatalogNames, ModelSelect
from .errors import ApiError
from .upstream import UpstreamClient

CURRENT: Final = "current"
NOT_LOADED: Final = "model_not_loaded"  # the error code of a name vLLM does not serve
LISTING_MAX_AGE_S: Final = 2.0


class ChatModels:
    """vLLM's model cards, cached, and name resolution against them.

    `clock` is the cache's time source (seconds, monotonic); tests pass one they move.
    """

    def __init__(
        self,
        upstream: UpstreamClient,
        catalog: CatalogNames,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._upstream = upstream
        self._catalog = catalog
        self._clock = clock
        self._cards: list[dict[str, Any]] | None = None
        self._fetched_at = -math.inf  # clock() of the last fetch
        self._select_read_at = -math.inf  # clock() of the last read of the model select
        self._fetching = asyncio.Lock()
        # The model select as Home Assistant showed it with the last fetch (None: unknown).
        self.select: ModelSelect | None = None
        # The loaded model's catalog key, learned with the cards (None: unknown).
        self.catalog_key: str | None = None

    async def cards(self, *, max_age_s: float = math.inf) -> list[dict[str, Any]]:
        """vLLM's model cards, fetched again when older than `max_age_s` (0: always).

        Raises the upstream's error when vLLM does not serve. A cached answer never waits for a
        fetch in progress; callers that need a fetch share the one under way.
        """
        cards = self._fresh_cards(max_age_s)
        if cards is not None:
            return cards
        async with self._fetching:
            cards = self._fresh_cards(max_age_s)
            if cards is None:
                cards = await self._upstream.vllm_models()
                self.select = await self._catalog.model_select()
                self.catalog_key = self._loaded_key([card.get("id") for card in cards])
                self._cards, self._fetched_at = cards, self._clock()
                self._select_read_at = self._fetched_at
            return cards

    async def model_select(self, *, max_age_s: float) -> ModelSelect | None:
        """The model select as Home Assistant shows it, read again when older than
        `max_age_s` (for listings while vLLM serves nothing, so no card fetch reads it)."""
        async with self._fetching:
            if self._clock() - self._select_read_at > max_age_s:
                self.select = await self._catalog.model_select()
                self._select_read_at = self._clock()
            return self.select

    def _loaded_key(self, ids: list[Any]) -> str | None:
        """The served model's catalog key: looked up by repo id in the catalog, or (from an
        integration without the `catalog` attribute) the key the select shows."""
        select = self.select
        if select is None:
            return None
        if select.catalog:
            return select.key_for(ids[0]) if ids and isinstance(ids[0], str) else None
        key = select.shown_key
        return key if key not in (None, CURRENT, *ids) else None

    def _fresh_cards(self, max_age_s: float) -> list[dict[str, Any]] | None:
        if self._cards is None or self._clock() - self._fetched_at > max_age_s:
            return None
        return self._cards

    def aliases(self) -> list[str]:
        """Other names of the loaded model: `current`, and its catalog key when known."""
        return [CURRENT] if self.catalog_key is None else [CURRENT, self.catalog_key]

    def forget(self) -> None:
        """Drop the cache: vLLM restarted or is about to serve another model."""
        self._cards = None

    async def resolve(self, name: str) -> str:
        """vLLM's id for `name`; a clear 404 when the named model is not the one loaded."""
        served = await self._served_ids()
        real = self._match(name, served)
        if real is None:  # maybe a swap finished since the cache was filled
            served = await self._served_ids(refresh=True)
            real = self._match(name, served)
        if real is None:
            loaded = ", ".join(served) or "none"
            raise ApiError(
                404,
                f"model {name!r} is not loaded on this gateway's vLLM (loaded: {loaded}; "
                f"'{CURRENT}' always names the loaded model). Swap models in Home Assistant.",
                code=NOT_LOADED,
                param="model",
            )
        return real

    async def _served_ids(self, *, refresh: bool = False) -> list[str]:
        cards = await self.cards(max_age_s=0 if refresh else math.inf)
        return [str(card["id"]) for card in cards if "id" in card]

    def swappable(self, name: str) -> CatalogModel | None:
        """The catalog model `name` is the key of, unless it is the loaded one."""
        if self.select is None or name == self.catalog_key:
            return None
        return self.select.catalog.get(name)

    def other_catalog_models(self) -> list[CatalogModel]:
        """The catalog's models other than the loaded one (none when HA did not say)."""
        if self.select is None:
            return []
        return [m for m in self.select.catalog.values() if m.key != self.catalog_key]

    def _match(self, name: str, served: list[str]) -> str | None:
        if name in served:
            return name
        if not served:
            return None
        if name == CURRENT or (name == self.catalog_key and name is not None):
            return served[0]
        return None


def alias_cards(cards: list[dict[str, Any]], aliases: list[str]) -> list[dict[str, Any]]:
    """vLLM's cards plus one card per alias of the loaded model (`root` names the real id)."""
    if not cards:
        return []
    loaded = cards[0]
    root = loaded.get("root", loaded.get("id"))
    return [*cards, *({**loaded, "id": alias, "root": root} for alias in aliases)]


def catalog_cards(models: list[CatalogModel], created: int) -> list[dict[str, Any]]:
    """Cards for catalog models a request can swap to: the key as id, the select's display
    name as `name` (Open WebUI shows it in its model picker), the repo id as `root`."""
    return [
        {
            "id": model.key,
            "object": "model",
            "created": created,
            "owned_by": "spark-control",
            "name": model.name,
            "root": model.repo_id,
        }
        for model in models
    ]
