"""Client for Parakeet's OpenAI-style transcription endpoint."""

from __future__ import annotations

import aiohttp

from .errors import SpeechServerFault, SpeechServiceError

PARAKEET_MODEL = "parakeet-tdt-0.6b-v3"
# The 25 European languages parakeet-tdt-0.6b-v3 was trained on.
PARAKEET_LANGUAGES = (
    "bg", "cs", "da", "de", "el", "en", "es", "et", "fi", "fr", "hr", "hu", "it",
    "lt", "lv", "mt", "nl", "pl", "pt", "ro", "ru", "sk", "sl", "sv", "uk",
)  # fmt: skip
_ERROR_TEXT_LIMIT = 200


class ParakeetClient:
    """Send 16 kHz mono WAV audio to Parakeet and return the recognized text."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        timeout: float = 60.0,
        model: str = PARAKEET_MODEL,
    ) -> None:
        self._session = session
        self._url = f"{base_url.rstrip('/')}/v1/audio/transcriptions"
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.model = model

    async def transcribe(self, wav: bytes, language: str | None = None) -> str:
        """Transcribe one WAV file; `language` may be a tag like `en-US`."""
        form = aiohttp.FormData()
        form.add_field("file", wav, filename="audio.wav", content_type="audio/wav")
        form.add_field("model", self.model)
        form.add_field("response_format", "json")
        if language:
            # Parakeet takes bare ISO 639-1 codes.
            form.add_field("language", language.split("-")[0].split("_")[0].lower())
        try:
            async with self._session.post(self._url, data=form, timeout=self._timeout) as resp:
                if resp.status >= 500:
                    raise SpeechServerFault("parakeet", await _short_text(resp), resp.status)
                if resp.status != 200:
                    raise SpeechServiceError("parakeet", await _short_text(resp), resp.status)
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise SpeechServiceError("parakeet", f"unreachable: {err!r}") from err
        except ValueError as err:
            raise SpeechServiceError("parakeet", "answer is not JSON") from err
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str):
            raise SpeechServiceError("parakeet", "answer has no text")
        return text.strip()


async def _short_text(resp: aiohttp.ClientResponse) -> str:
    body = (await resp.text(errors="replace")).strip()
    return f"HTTP {resp.status}: {body[:_ERROR_TEXT_LIMIT]}"
