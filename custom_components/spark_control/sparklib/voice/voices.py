"""The voices the TTS bridge offers, read from Magpie and picked per request."""

from __future__ import annotations

import asyncio
import logging
import time

from wyoming.info import Info

from .errors import SpeechServiceError
from .info import TTS_PROGRAM_NAME, tts_info
from .magpie import MagpieClient, MagpieVoice

_LOGGER = logging.getLogger(__name__)
DEFAULT_LANGUAGE = "en-US"
# A voice list that failed to load is retried at the next Describe, a good one kept this long.
_REFRESH_SECONDS = 300.0


class UnknownVoiceError(ValueError):
    """The client asked for a voice or language Magpie does not offer."""


class BridgeVoiceCatalog:
    """Magpie's voice list, cached, with the rules for choosing a voice.

    `Describe` must answer fast (HA gives up after 1 s), so the list is re-read in the
    background when it is old; only an empty list is waited for, briefly, and a read that
    outlasted one such wait is not waited for again.
    """

    def __init__(
        self,
        magpie: MagpieClient,
        default_language: str = DEFAULT_LANGUAGE,
        *,
        describe_wait: float = 0.5,
        program_name: str = TTS_PROGRAM_NAME,
    ) -> None:
        self._magpie = magpie
        self._program_name = program_name
        self._default_language = default_language
        self._describe_wait = describe_wait
        self._voices: list[MagpieVoice] = []
        self._loaded_at: float | None = None
        self._refreshing: asyncio.Task[None] | None = None
        # A refresh that outlasted one Describe's wait: Magpie hangs, so waiting on it again
        # would only spend half of every later Describe's second.
        self._outwaited: asyncio.Task[None] | None = None

    @property
    def voices(self) -> list[MagpieVoice]:
        """The voices as last read."""
        return list(self._voices)

    async def refresh(self) -> None:
        """Read the voice list from Magpie (raises SpeechServiceError when it cannot)."""
        self._voices = await self._magpie.list_voices()
        self._loaded_at = time.monotonic()

    async def info(self) -> Info:
        """The TTS `Info` from the cached voices, refreshing them when missing or old."""
        stale = self._loaded_at is None or time.monotonic() - self._loaded_at > _REFRESH_SECONDS
        if stale and (self._refreshing is None or self._refreshing.done()):
            self._refreshing = asyncio.create_task(self._refresh_quietly(), name="magpie voices")
        refreshing = self._refreshing
        if not self._voices and refreshing is not None and refreshing is not self._outwaited:
            await asyncio.wait([refreshing], timeout=self._describe_wait)
            if not refreshing.done():
                self._outwaited = refreshing
        return tts_info(self._voices, self._program_name)

    async def refreshed(self) -> None:
        """Wait for the background refresh under way, if any (a failed one is logged only)."""
        if self._refreshing is not None:
            await asyncio.wait([self._refreshing])

    async def close(self) -> None:
        """Stop a background refresh still running."""
        if self._refreshing is not None and not self._refreshing.done():
            self._refreshing.cancel()
            await asyncio.gather(self._refreshing, return_exceptions=True)
        self._refreshing = None

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh()
        except SpeechServiceError as err:
            _LOGGER.warning("Cannot read Magpie's voices, offering the last known: %s", err)

    async def choose(self, name: str | None, language: str | None) -> MagpieVoice:
        """Pick the voice named, else one speaking `language`, else the default voice."""
        if not self._voices:
            await self.refresh()
        if not self._voices:
            raise SpeechServiceError("magpie", "offers no voices")
        if name:
            for voice in self._voices:
                if voice.name == name:
                    return voice
            # wyoming 1.7 turns a language-only voice into a name; treat it as a language.
            if _looks_like_language(name):
                language = language or name
            else:
                raise UnknownVoiceError(f"unknown voice {name!r}")
        wanted = language or self._default_language
        for matches in (_same_tag, _same_base):
            for voice in self._voices:
                if matches(voice.language, wanted):
                    return voice
        if language:
            raise UnknownVoiceError(f"no voice speaks {language!r}")
        return self._voices[0]


def _same_tag(a: str, b: str) -> bool:
    return a.lower().replace("_", "-") == b.lower().replace("_", "-")


def _same_base(a: str, b: str) -> bool:
    return a.split("-")[0].lower() == b.replace("_", "-").split("-")[0].lower()


def _looks_like_language(name: str) -> bool:
    base, _, region = name.replace("_", "-").partition("-")
    return 2 <= len(base) <= 3 and base.isalpha() and (not region or region.isalnum())
