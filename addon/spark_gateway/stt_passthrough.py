"""Audio that already is what Parakeet takes goes to it as uploaded, without a decoder.

A canonical WAV (44-byte header: `fmt ` of 16 bytes, then `data`) holding 16 kHz mono signed
16-bit PCM, whose declared data size matches the file, is exactly what the decoder would write.
Decoding and re-encoding it would cost a process, a copy and several milliseconds for the same
bytes. Anything else (other rates, extra chunks, an open or wrong data size) is decoded as usual.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Final

from .audio_codec import TARGET_RATE, AudioDecodeError
from .decoder import DecodedFile
from .wav_header import PCM

CANONICAL_HEADER_BYTES: Final = 44
# RIFF, size, WAVE, "fmt ", 16, format tag, channels, rate, byte rate, block align, bits,
# "data", size: the whole canonical header in one unpack.
_CANONICAL: Final = struct.Struct("<4sI4s4sIHHIIHH4sI")
_LAYOUT: Final = (b"WAVE", b"fmt ", 16, b"data")
_PARAKEET_FORMAT: Final = (PCM, 1, TARGET_RATE, 2, 16)  # tag, channels, rate, block align, bits
_OPEN_SIZES: Final = (0, 0xFFFFFFFF)  # what streaming writers leave in the data size


def wav16k_as_is(upload: Path | bytes, head: bytes, *, max_duration_s: float) -> DecodedFile | None:
    """The upload itself when it is Parakeet's format already; None when it needs decoding.

    `head` is the start of the upload, its header already checked (`wav_header.py`), so the
    fields are read here in one unpack; blocking but cheap (a stat of a spooled file).
    """
    if len(head) < CANONICAL_HEADER_BYTES:
        return None
    riff, _, wave, fmt, fmt_size, tag, channels, rate, _, align, bits, data, data_bytes = (
        _CANONICAL.unpack_from(head)
    )
    if riff not in (b"RIFF", b"RF64") or (wave, fmt, fmt_size, data) != _LAYOUT:
        return None
    if (tag, channels, rate, align, bits) != _PARAKEET_FORMAT:
        return None
    size = len(upload) if isinstance(upload, bytes) else upload.stat().st_size
    if data_bytes in _OPEN_SIZES or data_bytes != size - CANONICAL_HEADER_BYTES:
        return None
    n_samples = data_bytes // 2
    if n_samples == 0:
        raise AudioDecodeError("the audio holds no samples")
    if n_samples > max_duration_s * TARGET_RATE:
        raise AudioDecodeError(f"the audio is longer than the {max_duration_s:.0f} s allowed")
    return DecodedFile(upload, n_samples)
