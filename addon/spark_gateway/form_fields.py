"""Caps on the text fields of an upload form, each checked as its field arrives.

The whole body is capped by `max_upload_bytes` (hundreds of MiB, for long recordings); a text
field gets a cap of its own so that a `model` or `language` of megabytes is refused with a 400
naming the field before it is held in memory. OpenAI documents no byte limits for these
fields; the caps follow what each field can hold: Whisper reads at most 224 tokens of
`prompt`, and a known speaker's reference is a data URL of a short clip.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from .diarized_transcript import MAX_REFERENCE_BYTES
from .errors import ApiError

# Model ids, language tags, formats, flags, speaker names (64 characters of up to 4 bytes).
DEFAULT_FIELD_BYTES: Final = 512
# 224 tokens of any script fit in 4 KiB of UTF-8.
PROMPT_BYTES: Final = 4 * 1024
# A reference clip in base64 plus its `data:audio/...;base64,` prefix.
REFERENCE_BYTES: Final = MAX_REFERENCE_BYTES * 4 // 3 + 4 + 256
MAX_TEXT_FIELDS: Final = 64

FIELD_BYTES: Final[Mapping[str, int]] = {
    "prompt": PROMPT_BYTES,
    "hotwords": PROMPT_BYTES,
    "known_speaker_references[]": REFERENCE_BYTES,
    "known_speaker_references": REFERENCE_BYTES,
}


def field_cap(name: str) -> int:
    """The most bytes a text field of this name may hold."""
    return FIELD_BYTES.get(name, DEFAULT_FIELD_BYTES)


def check_field_size(name: str, size: int) -> None:
    """400 naming the field when `size` bytes are over its cap."""
    cap = field_cap(name)
    if size > cap:
        shown = name[:64]
        raise ApiError(400, f"'{shown}' is longer than {cap} bytes",
                       code="string_above_max_length", param=shown)  # fmt: skip


def check_field_count(count: int) -> None:
    """400 when a form carries more text fields than any route reads."""
    if count > MAX_TEXT_FIELDS:
        raise ApiError(400, f"more than {MAX_TEXT_FIELDS} form fields", code="too_many_fields")
