"""The voices the TTS bridge offers, read from Magpie and picked per request."""

from __future__ import annotations

import logging
import time

from wyoming.info import Info

from .errors import SpeechServiceError
from .info import tts_info
from .magpie import MagpieClient, MagpieVoice

_LOGGER = logging.getLogger(__name__)
DEFAULT_LANGUAGE = "en-US"
# A voice list that failed to load is retried at the next Describe, a good one kept this long.
_REFRESH_SECONDS = 300.0


class UnknownVoiceError(ValueError):
    """The client asked for a voice or language Magpie does not offer."""


class VoiceCatalog:
    """Magpie's voice list, cached, with the rules for choosing a voice."""

    def __init__(self, magpie: MagpieClient, default_language: str = DEFAULT_LANGUAGE) -> None:
        self._magpie = magpie
        self._default_language = default_language
        self._voices: list[MagpieVoice] = []
        self._loaded_at: float | None = None

    @property
    def voices(self) -> list[MagpieVoice]:
        """The voices as last read."""
        return list(self._voices)

    async def refresh(self) -> None:
        """Read the voice list from Magpie (raises SpeechServiceError when it cannot)."""
        self._voices = await self._magpie.list_voices()
        self._loaded_at = time.monotonic()

    async def info(self) -> Info:
        """The TTS `Info`, re-reading the voice list when it is missing or old."""
        stale = self._loaded_at is None or time.monotonic() - self._loaded_at > _REFRESH_SECONDS
        if stale or not self._voices:
            try:
                await self.refresh()
            except SpeechServiceError as err:
                _LOGGER.warning("Cannot read Magpie's voices, offering the last known: %s", err)
        return tts_info(self._voices)

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
