"""Client for Magpie's (NVIDIA NIM TTS) voice list and synthesis endpoints."""

from __future__ import annotations

import json
from dataclasses import dataclass

import aiohttp

from .errors import SpeechServerFault, SpeechServiceError, unreachable
from .wav import PcmAudio, WavFormatError, parse_wav

MAGPIE_MODEL = "magpie-tts-multilingual"
DEFAULT_SAMPLE_RATE = 22050
_ERROR_TEXT_LIMIT = 200
_LOCALE_NAMES = {
    "de": "German",
    "en": "English",
    "es": "Spanish",
    "fr": "French",
    "it": "Italian",
    "ja": "Japanese",
    "vi": "Vietnamese",
    "zh": "Chinese",
}


@dataclass(frozen=True, slots=True)
class MagpieVoice:
    """One Magpie voice, e.g. `Magpie-Multilingual.EN-US.Mia`."""

    name: str
    language: str  # BCP 47 tag from the name's locale part, e.g. "en-US"

    @property
    def speaker(self) -> str:
        """The speaker's name after the locale, with its style: `Aria` or `Aria, Calm`."""
        parts = self.name.split(".")
        after_locale = next(
            (parts[i + 1 :] for i, part in enumerate(parts) if voice_language(part)), parts[-1:]
        )
        return ", ".join(after_locale) or self.name

    @property
    def description(self) -> str:
        """A name people can read in a voice picker."""
        base = self.language.split("-")[0]
        language = _LOCALE_NAMES.get(base, self.language)
        return f"{self.speaker} ({language}, {self.language})"


def voice_language(voice_name: str) -> str | None:
    """Return the language tag a Magpie voice name carries (`...EN-US.Mia` -> `en-US`)."""
    for part in voice_name.split("."):
        lang, sep, region = part.partition("-")
        if sep and 2 <= len(lang) <= 3 and lang.isalpha() and region.isalnum():
            return f"{lang.lower()}-{region.upper()}"
    return None


class MagpieClient:
    """List Magpie's voices and synthesize text to 16-bit PCM."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, *, timeout: float = 60.0
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def list_voices(self) -> list[MagpieVoice]:
        """Read the voices from `/v1/audio/list_voices` (keys are comma-joined locales)."""
        body = await self._request("GET", "/v1/audio/list_voices", None)
        try:
            listing = _json_object(body)
        except (TypeError, ValueError) as err:
            raise SpeechServiceError("magpie", "voice list is not a JSON object") from err
        voices: dict[str, MagpieVoice] = {}
        for locales, entry in listing.items():
            names = entry.get("voices", []) if isinstance(entry, dict) else []
            fallback = str(locales).split(",")[0].strip() or "en-US"
            for name in names:
                if isinstance(name, str) and name not in voices:
                    voices[name] = MagpieVoice(name, voice_language(name) or fallback)
        return list(voices.values())

    async def synthesize(
        self,
        text: str,
        voice: MagpieVoice,
        sample_rate: int = DEFAULT_SAMPLE_RATE,
    ) -> PcmAudio:
        """Synthesize one piece of text (at most 2,000 characters) into PCM audio."""
        # Magpie reads multipart only, even without a file field.
        form = aiohttp.FormData(default_to_multipart=True)
        form.add_field("text", text)
        form.add_field("language", voice.language)
        form.add_field("voice", voice.name)
        form.add_field("sample_rate_hz", str(sample_rate))
        form.add_field("encoding", "LINEAR_PCM")
        body = await self._request("POST", "/v1/audio/synthesize", form)
        try:
            return parse_wav(body)
        except WavFormatError as err:
            raise SpeechServiceError("magpie", f"bad WAV answer: {err}") from err

    async def _request(self, method: str, path: str, form: aiohttp.FormData | None) -> bytes:
        try:
            async with self._session.request(
                method, f"{self._base_url}{path}", data=form, timeout=self._timeout
            ) as resp:
                body = await resp.read()
                if resp.status != 200:
                    text = body.decode(errors="replace").strip()[:_ERROR_TEXT_LIMIT]
                    error = SpeechServerFault if resp.status >= 500 else SpeechServiceError
                    raise error("magpie", f"HTTP {resp.status}: {text}", resp.status)
                return body
        except (aiohttp.ClientError, TimeoutError) as err:
            raise unreachable("magpie", err) from err


def _json_object(body: bytes) -> dict[str, object]:
    value = json.loads(body)
    if not isinstance(value, dict):
        raise TypeError("not an object")
    return value
