"""The multipart body that carries a WAV (and a few text fields) to the Parakeet container.

A voice command's WAV (up to 256 KiB, 8 s) goes as one bytes body assembled here: aiohttp's
`FormData` builds a payload object, a header dictionary and quoted names for every field,
which cost about 0.5 ms a request in `benchmarks/gateway_stt_overhead.py`, half the gateway's
whole budget. A longer spooled file is streamed from disk through `FormData` instead.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiohttp

from .parakeet_formats import WAV_16K, UploadFormat

READ_AT_ONCE_BYTES: Final = 256 * 1024  # 8 s of 16 kHz mono PCM16


@dataclass(frozen=True, slots=True)
class InlineForm:
    """A complete multipart/form-data body and its Content-Type (with the boundary)."""

    body: bytes
    content_type: str


def wav_form(
    wav: bytes | Path, fields: Sequence[tuple[str, str]], audio_format: UploadFormat = WAV_16K
) -> InlineForm | aiohttp.FormData:
    """`file` (audio.wav, or as `audio_format` names it) followed by `fields`; field names are
    the gateway's own constants."""
    if isinstance(wav, Path):
        if wav.stat().st_size > READ_AT_ONCE_BYTES:
            payload = aiohttp.payload.BufferedReaderPayload(wav.open("rb"))
            return _streamed(payload, fields, audio_format)
        # One read from the page cache costs less than a streamed payload's executor trips.
        wav = wav.read_bytes()
    return _inline(wav, fields, audio_format)


def _inline(
    wav: bytes, fields: Sequence[tuple[str, str]], audio_format: UploadFormat
) -> InlineForm:
    # 128 random bits, drawn after the upload arrived: no upload holds them by chance or by
    # design, so the audio is not searched for them (as aiohttp's FormData, httpx and requests
    # do not; the search was 5.6 us of this function's 13.6 for 1 s of audio).
    boundary = secrets.token_hex(16)
    marker = b"--" + boundary.encode()
    parts = [marker, audio_format.part_header, wav]
    for name, value in fields:
        parts += [
            b"\r\n",
            marker,
            f'\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode(),
            value.encode(),
        ]
    parts += [b"\r\n", marker, b"--\r\n"]
    return InlineForm(b"".join(parts), f"multipart/form-data; boundary={boundary}")


def _streamed(
    payload: aiohttp.payload.Payload, fields: Sequence[tuple[str, str]], audio_format: UploadFormat
) -> aiohttp.FormData:
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field(
        "file", payload, filename=audio_format.filename, content_type=audio_format.content_type
    )
    for name, value in fields:
        form.add_field(name, value)
    return form
