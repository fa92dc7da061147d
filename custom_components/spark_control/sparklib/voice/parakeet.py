"""Client for Parakeet's OpenAI-style transcription endpoint."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from aiohttp import hdrs

from .errors import SpeechServerFault, SpeechServiceError, unreachable

PARAKEET_MODEL = "parakeet-tdt-0.6b-v3"
# The 25 European languages parakeet-tdt-0.6b-v3 was trained on.
PARAKEET_LANGUAGES = (
    "bg", "cs", "da", "de", "el", "en", "es", "et", "fi", "fr", "hr", "hu", "it",
    "lt", "lv", "mt", "nl", "pl", "pt", "ro", "ru", "sk", "sl", "sv", "uk",
)  # fmt: skip
_ERROR_TEXT_LIMIT = 200
# Stands in for the audio while aiohttp renders the multipart request around it.
_AUDIO_PLACEHOLDER = b"\x00spark-control-audio-placeholder\x00"


@dataclass(frozen=True, slots=True)
class UploadFraming:
    """A transcription request's multipart body minus the WAV file: `head` + WAV + `tail`.

    Rendered before the audio ends, so the request is ready the moment speech stops.
    """

    head: bytes
    tail: bytes
    content_type: str


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

    async def upload_framing(self, language: str | None = None) -> UploadFraming:
        """The request body around the WAV file for `language` (a tag like `en-US`)."""
        form = aiohttp.FormData()
        form.add_field("file", _AUDIO_PLACEHOLDER, filename="audio.wav", content_type="audio/wav")
        form.add_field("model", self.model)
        form.add_field("response_format", "json")
        if language:
            # Parakeet takes bare ISO 639-1 codes.
            form.add_field("language", language.split("-")[0].split("_")[0].lower())
        multipart = form()
        head, _placeholder, tail = (await multipart.as_bytes()).partition(_AUDIO_PLACEHOLDER)
        return UploadFraming(head=head, tail=tail, content_type=multipart.content_type)

    async def transcribe(self, wav: bytes, language: str | None = None) -> str:
        """Transcribe one WAV file; `language` may be a tag like `en-US`."""
        framing = await self.upload_framing(language)
        return await self.transcribe_upload(framing.head + wav + framing.tail, framing.content_type)

    async def transcribe_upload(self, body: bytes | bytearray, content_type: str) -> str:
        """POST a finished body (`UploadFraming` head + WAV + tail) and return the text."""
        try:
            async with self._session.post(
                self._url,
                data=body,
                headers={hdrs.CONTENT_TYPE: content_type},
                timeout=self._timeout,
            ) as resp:
                if resp.status >= 500:
                    raise SpeechServerFault("parakeet", await _short_text(resp), resp.status)
                if resp.status != 200:
                    raise SpeechServiceError("parakeet", await _short_text(resp), resp.status)
                body_json = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise unreachable("parakeet", err) from err
        except ValueError as err:
            raise SpeechServiceError("parakeet", "answer is not JSON") from err
        text = body_json.get("text") if isinstance(body_json, dict) else None
        if not isinstance(text, str):
            raise SpeechServiceError("parakeet", "answer has no text")
        return text.strip()


async def _short_text(resp: aiohttp.ClientResponse) -> str:
    body = (await resp.text(errors="replace")).strip()
    return f"HTTP {resp.status}: {body[:_ERROR_TEXT_LIMIT]}"
