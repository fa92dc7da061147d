"""The chat model vLLM serves, and the names a client may use for it.

vLLM knows its model only by the id it was started with (a Hugging Face repo id), which changes
with every swap. Clients may also say `current` (whatever is loaded) or the catalog key of the
loaded model (as Home Assistant's model select shows it, see `catalog_names.py`). The gateway
rewrites such a name to vLLM's id before relaying, so vLLM's answer carries the real model in
its `model` field.

The served ids are cached: they change only across a vLLM restart, which the relay notices (a
refused connection, a 503 while loading, a 404 for a rewritten name) and answers with `forget()`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .errors import ApiError
from .upstream import UpstreamClient

CURRENT: Final = "current"


class ChatModels:
    """vLLM's model cards, cached, and name resolution against them."""

    def __init__(self, upstream: UpstreamClient) -> None:
        self._upstream = upstream
        self._cards: list[dict[str, Any]] | None = None
        # Catalog key -> repo id, for the keys whose repo id is known (the loaded one).
        self.catalog_keys: Mapping[str, str] = {}

    async def cards(self, *, refresh: bool = False) -> list[dict[str, Any]]:
        """vLLM's model cards; raises the upstream's error when vLLM does not serve."""
        if self._cards is None or refresh:
            self._cards = await self._upstream.vllm_models()
        return self._cards

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
                code="model_not_loaded",
                param="model",
            )
        return real

    async def _served_ids(self, *, refresh: bool = False) -> list[str]:
        return [str(card["id"]) for card in await self.cards(refresh=refresh) if "id" in card]

    def _match(self, name: str, served: list[str]) -> str | None:
        if name in served:
            return name
        if not served:
            return None
        if name == CURRENT:
            return served[0]
        target = self.catalog_keys.get(name)
        return target if target in served else None


def alias_cards(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """vLLM's cards plus a `current` card for the loaded model (its `root` names the real id)."""
    if not cards:
        return []
    loaded = cards[0]
    current = {**loaded, "id": CURRENT, "root": loaded.get("root", loaded.get("id"))}
    return [*cards, current]
