"""Checking a RIFF/WAVE header before any decoder sees the file.

FFmpeg accepts WAV `fmt ` chunks it cannot decode (format tag 0, 0xFFFF, 0x1234, a truncated
WAVE_FORMAT_EXTENSIBLE, 0 bits per sample...) and PyAV then segfaults decoding them. The header
is a few dozen bytes, so it is read here, in the gateway, and anything outside the formats below
is refused with a message naming the field. Files that are not RIFF/WAVE are left to the
decoder's own checks (`audio_codec.check_stream`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from .audio_limits import MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE

PCM: Final = 0x0001
IEEE_FLOAT: Final = 0x0003
EXTENSIBLE: Final = 0xFFFE

# format tag -> the bits per sample FFmpeg decodes for it
_DECODABLE: Final[dict[int, frozenset[int]]] = {
    PCM: frozenset({8, 16, 24, 32}),
    0x0002: frozenset({4}),  # Microsoft ADPCM
    IEEE_FLOAT: frozenset({32, 64}),
    0x0006: frozenset({8}),  # A-law
    0x0007: frozenset({8}),  # mu-law
    0x0011: frozenset({4}),  # IMA ADPCM
    0x0055: frozenset({0}),  # MP3 in WAV (bits unused)
}
_EXTENSIBLE_GUID_TAIL: Final = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
HEADER_BYTES: Final = 64 * 1024  # how much of a file the header check reads at most
_UNKNOWN_SIZE: Final = 0xFFFFFFFF  # streaming writers leave the data size open


class WavHeaderError(ValueError):
    """A RIFF/WAVE header no decoder should be given (the client's fault: 400)."""


@dataclass(frozen=True, slots=True)
class WavHeader:
    """The fields of a checked `fmt ` chunk and the declared data size (None when open)."""

    format_tag: int
    channels: int
    sample_rate: int
    bits_per_sample: int
    block_align: int
    data_bytes: int | None

    @property
    def declared_seconds(self) -> float | None:
        """Length the header declares, or None when the data size is left open or unknown."""
        if self.data_bytes is None or self.block_align == 0 or self.format_tag != PCM:
            return None
        return self.data_bytes / self.block_align / self.sample_rate


def is_riff_wave(head: bytes) -> bool:
    """Whether the bytes start like a WAV file (RIFF, RIFX or RF64 with WAVE)."""
    return len(head) >= 12 and head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE"


def parse_wav_header(head: bytes) -> WavHeader:
    """Check the `fmt ` chunk of a WAV file's first bytes; raise WavHeaderError naming the fault."""
    if head[:4] == b"RIFX":
        raise WavHeaderError("big-endian WAV (RIFX) is not supported")
    offset = 12
    fmt: WavHeader | None = None
    while offset + 8 <= len(head):
        chunk_id = head[offset : offset + 4]
        (size,) = struct.unpack_from("<I", head, offset + 4)
        body = offset + 8
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(head[body : body + size], size)
        elif chunk_id == b"data":
            if fmt is None:
                raise WavHeaderError("WAV data chunk comes before its fmt chunk")
            data_bytes = None if size in (0, _UNKNOWN_SIZE) else size
            return WavHeader(
                fmt.format_tag,
                fmt.channels,
                fmt.sample_rate,
                fmt.bits_per_sample,
                fmt.block_align,
                data_bytes,
            )
        offset = body + size + (size & 1)  # chunks are padded to even sizes
    if fmt is None:
        raise WavHeaderError("WAV file without a fmt chunk in its first 64 KiB")
    raise WavHeaderError("WAV file without a data chunk in its first 64 KiB")


def _parse_fmt(chunk: bytes, declared_size: int) -> WavHeader:
    if declared_size < 16 or len(chunk) < 16:
        raise WavHeaderError(f"WAV fmt chunk of {declared_size} bytes (at least 16 needed)")
    tag, channels, rate, byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", chunk)
    if tag == EXTENSIBLE:
        if len(chunk) < 40 or chunk[26:40] != _EXTENSIBLE_GUID_TAIL:
            raise WavHeaderError("WAV format tag 0xFFFE without a valid extensible sub-format")
        (tag,) = struct.unpack_from("<H", chunk, 24)
    if tag not in _DECODABLE:
        raise WavHeaderError(f"unsupported WAV format tag 0x{tag:04X}")
    if tag != 0x0055 and bits not in _DECODABLE[tag]:
        raise WavHeaderError(f"WAV format 0x{tag:04X} with {bits} bits per sample")
    if not 1 <= channels <= MAX_CHANNELS:
        raise WavHeaderError(f"WAV with {channels} channels (1 to {MAX_CHANNELS} accepted)")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise WavHeaderError(
            f"WAV sample rate {rate} Hz ({MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} accepted)"
        )
    if block_align == 0 and tag != 0x0055:
        raise WavHeaderError("WAV block alignment of 0")
    if tag in (PCM, IEEE_FLOAT) and block_align != channels * bits // 8:
        raise WavHeaderError(
            f"WAV block alignment {block_align} does not match {channels} x {bits} bits"
        )
    del byte_rate  # informational; FFmpeg recomputes it
    return WavHeader(tag, channels, rate, bits, block_align, None)
