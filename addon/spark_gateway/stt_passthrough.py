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
from .wav_header import is_riff_wave, parse_wav_header

CANONICAL_HEADER_BYTES: Final = 44


def wav16k_as_is(upload: Path | bytes, head: bytes, *, max_duration_s: float) -> DecodedFile | None:
    """The upload itself when it is Parakeet's format already; None when it needs decoding.

    `head` is the start of the upload, its header already checked; blocking but cheap (a stat
    of a spooled file).
    """
    size = len(upload) if isinstance(upload, bytes) else upload.stat().st_size
    head = head[:CANONICAL_HEADER_BYTES]
    if not _is_canonical(head):
        return None
    header = parse_wav_header(head)
    if not header.is_pcm16_mono_16k or header.data_bytes is None:
        return None
    if header.data_bytes != size - CANONICAL_HEADER_BYTES:
        return None
    n_samples = header.data_bytes // 2
    if n_samples == 0:
        raise AudioDecodeError("the audio holds no samples")
    if n_samples > max_duration_s * TARGET_RATE:
        raise AudioDecodeError(f"the audio is longer than the {max_duration_s:.0f} s allowed")
    return DecodedFile(upload, n_samples)


def _is_canonical(head: bytes) -> bool:
    return (
        len(head) == CANONICAL_HEADER_BYTES
        and is_riff_wave(head)
        and head[12:16] == b"fmt "
        and struct.unpack_from("<I", head, 16)[0] == 16
        and head[36:40] == b"data"
    )
