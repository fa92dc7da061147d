"""Reading and writing the WAV files that travel between the bridges and the speech servers.

Python's `wave` module rejects IEEE-float WAVs and trusts whatever follows the `data` chunk, so
TTS servers that answer with float32 samples or append `LIST`/metadata chunks would play as noise
or end in a click. This reader walks the RIFF chunks itself, honours the `data` size and always
hands back signed 16-bit PCM.
"""

from __future__ import annotations

import io
import struct
import wave
from dataclasses import dataclass

import numpy as np

_FORMAT_PCM = 1
_FORMAT_FLOAT = 3
_FORMAT_EXTENSIBLE = 0xFFFE
# A streamed WAV may announce an unknown length with 0 or 0xFFFFFFFF in the size fields.
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


class WavFormatError(ValueError):
    """The bytes are not a WAV file this bridge can decode."""


@dataclass(frozen=True, slots=True)
class PcmAudio:
    """Interleaved little-endian PCM samples with their format."""

    rate: int
    width: int
    channels: int
    pcm: bytes

    @property
    def frames(self) -> int:
        """Number of samples per channel."""
        return len(self.pcm) // (self.width * self.channels)

    @property
    def seconds(self) -> float:
        """Duration of the audio."""
        return self.frames / self.rate


def parse_wav(data: bytes) -> PcmAudio:
    """Decode a WAV file into 16-bit PCM, whatever sample format it uses."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavFormatError("not a RIFF/WAVE file")
    fmt: tuple[int, int, int, int] | None = None
    samples: bytes | None = None
    offset = 12
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        body_start = offset + 8
        if chunk_id == b"data" and size in _UNKNOWN_SIZES:
            size = len(data) - body_start
        body = data[body_start : body_start + size]
        if chunk_id == b"fmt ":
            fmt = _read_fmt(body)
        elif chunk_id == b"data" and samples is None:
            samples = body
        # RIFF pads odd-sized chunks to an even length.
        offset = body_start + size + (size & 1)
    if fmt is None:
        raise WavFormatError("WAV file has no fmt chunk")
    if samples is None:
        raise WavFormatError("WAV file has no data chunk")
    sample_format, channels, rate, bits = fmt
    block = channels * bits // 8
    samples = samples[: len(samples) - len(samples) % block]
    pcm = _to_int16(samples, sample_format, bits)
    return PcmAudio(rate=rate, width=2, channels=channels, pcm=pcm)


def _read_fmt(body: bytes) -> tuple[int, int, int, int]:
    if len(body) < 16:
        raise WavFormatError("fmt chunk too short")
    sample_format, channels, rate, _byte_rate, _align, bits = struct.unpack_from("<HHIIHH", body)
    if sample_format == _FORMAT_EXTENSIBLE and len(body) >= 26:
        # The real format is the first two bytes of the SubFormat GUID.
        (sample_format,) = struct.unpack_from("<H", body, 24)
    if channels < 1 or rate < 1:
        raise WavFormatError("WAV file declares no channels or no sample rate")
    if (sample_format, bits) not in {
        (_FORMAT_PCM, 8),
        (_FORMAT_PCM, 16),
        (_FORMAT_PCM, 24),
        (_FORMAT_PCM, 32),
        (_FORMAT_FLOAT, 32),
        (_FORMAT_FLOAT, 64),
    }:
        raise WavFormatError(f"unsupported WAV sample format {sample_format} with {bits} bits")
    return sample_format, channels, rate, bits


def _to_int16(samples: bytes, sample_format: int, bits: int) -> bytes:
    if sample_format == _FORMAT_FLOAT:
        floats = np.frombuffer(samples, dtype="<f4" if bits == 32 else "<f8")
        return (np.clip(floats, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    if bits == 16:
        return samples
    if bits == 8:
        # 8-bit WAV is unsigned with its midpoint at 128.
        unsigned = np.frombuffer(samples, dtype=np.uint8).astype(np.int16)
        return ((unsigned - 128) << 8).astype("<i2").tobytes()
    if bits == 24:
        triples = np.frombuffer(samples, dtype=np.uint8).reshape(-1, 3)
        # The two most significant bytes of each little-endian triple form the int16 sample.
        return triples[:, 1:].copy().view("<i2").reshape(-1).tobytes()
    wide = np.frombuffer(samples, dtype="<i4")
    return (wide >> 16).astype("<i2").tobytes()


def pcm_to_wav(audio: PcmAudio) -> bytes:
    """Wrap PCM samples in a plain WAV header."""
    with io.BytesIO() as buffer:
        with wave.open(buffer, "wb") as writer:
            writer.setframerate(audio.rate)
            writer.setsampwidth(audio.width)
            writer.setnchannels(audio.channels)
            writer.writeframes(audio.pcm)
        return buffer.getvalue()


class GrowingWav:
    """A PCM WAV built while the audio streams in; only the header's sizes wait for the end.

    `preamble` is kept in front of the file in the same buffer (e.g. the multipart framing of
    an upload), so the finished request needs no copy of the audio.
    """

    def __init__(self, rate: int, width: int, channels: int, *, preamble: bytes = b"") -> None:
        self._frame = width * channels
        self._header_at = len(preamble)
        # The wave module writes the header (sizes 0 for no frames); `finish` patches them.
        header = pcm_to_wav(PcmAudio(rate, width, channels, b""))
        if header[36:40] != b"data":  # the plain 44-byte PCM layout the offsets below rely on
            raise WavFormatError("unexpected WAV header layout")
        self._buffer = bytearray(preamble)
        self._buffer += header
        self._data_at = len(self._buffer)
        self._size = 0

    @property
    def pcm_size(self) -> int:
        """Bytes of audio appended so far."""
        return len(self._buffer) - self._data_at

    def append(self, pcm: bytes) -> None:
        """Add whole frames of audio."""
        self._buffer += pcm

    def finish(self, trailer: bytes = b"") -> bytearray:
        """Fill in the sizes, append `trailer` and hand over the buffer (preamble, WAV, trailer)."""
        size = self.pcm_size - self.pcm_size % self._frame
        del self._buffer[self._data_at + size :]
        struct.pack_into("<I", self._buffer, self._header_at + 4, 36 + size)
        struct.pack_into("<I", self._buffer, self._header_at + 40, size)
        self._size = size
        self._buffer += trailer
        return self._buffer

    def finished_wav(self) -> bytes:
        """The WAV file alone (no preamble or trailer), once `finish` has run."""
        return bytes(self._buffer[self._header_at : self._data_at + self._size])
