"""The Magpie voice catalogue and the alias names apps may use instead."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from .config import GatewayConfig
from .errors import ApiError
from .upstream import UpstreamClient

VOICES_MAX_AGE_S: Final = 60.0  # Magpie's voices change only when it restarts


@dataclass(frozen=True, slots=True)
class Voice:
    """A voice Magpie can speak with, and the language it speaks."""

    name: str
    language: str  # BCP-47, e.g. en-US


def language_of(voice_name: str) -> str:
    """Magpie voices are `Model.LOCALE.Speaker[.Emotion]`: the locale is the second part."""
    parts = voice_name.split(".")
    if len(parts) >= 3 and "-" in parts[1]:
        lang, _, region = parts[1].partition("-")
        return f"{lang.lower()}-{region.upper()}"
    return "en-US"


class GatewayVoiceCatalog:
    """Magpie's voices (fetched, cached for a minute) plus configured aliases.

    `clock` is the cache's time source (seconds, monotonic); tests pass one they move.
    """

    def __init__(
        self, config: GatewayConfig, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._config = config
        self._clock = clock
        self._voices: list[str] = []
        self._fetched_at: float | None = None
        self._fetching = asyncio.Lock()

    async def magpie_voices(self, upstream: UpstreamClient) -> list[str]:
        """Every Magpie voice name, in Magpie's order (raises when Magpie is down).

        Callers arriving while a fetch runs share it: a burst of keyless listings is one
        Magpie request.
        """
        if self._fresh():
            return self._voices
        async with self._fetching:
            if not self._fresh():
                by_locale = await upstream.list_voices()
                seen: dict[str, None] = {}
                for names in by_locale.values():
                    seen.update(dict.fromkeys(names))
                self._voices = list(seen)
                self._fetched_at = self._clock()
        return self._voices

    def _fresh(self) -> bool:
        return self._fetched_at is not None and self._clock() - self._fetched_at < VOICES_MAX_AGE_S

    def aliases(self) -> dict[str, str]:
        """Alias -> Magpie voice, as configured (OpenAI names included by default)."""
        return dict(self._config.voice_aliases)

    async def resolve(self, requested: str, upstream: UpstreamClient) -> Voice:
        """A Magpie voice for a requested name or alias; 400 when it names no voice."""
        known = await self.magpie_voices(upstream)
        by_lower = {name.lower(): name for name in known}
        aliases = {k.lower(): v for k, v in self._config.voice_aliases.items()}
        name = by_lower.get(requested.lower())
        if name is None and requested.lower() in aliases:
            target = aliases[requested.lower()]
            name = by_lower.get(target.lower(), target if not known else None)
        if name is None:
            raise ApiError(
                400,
                f"unknown voice {requested!r}; GET /v1/audio/voices lists the voices",
                code="unknown_voice",
                param="voice",
            )
        return Voice(name=name, language=language_of(name))
