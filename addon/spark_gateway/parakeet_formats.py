"""What the gateway sends Parakeet for each upload: as uploaded, remuxed, or decoded.

In this order:

1. A canonical WAV holding 16 kHz mono PCM16 goes as uploaded (`stt_passthrough.py`, checked
   in the gateway's own process: a header read, no parsing library).
2. Opus with 1 or 2 channels (channel mapping family 0), in WebM/Matroska or Ogg, goes as
   Ogg/Opus: its packets are copied, not decoded (`opus_remux.py`, in a decoder process).
3. Anything else FFmpeg decodes goes as 16 kHz mono WAV (`audio_codec.py`, in a decoder
   process).

The Parakeet container decodes Ogg/Opus on the GPU node (libsndfile, resampled with soxr), as
NVIDIA's Riva/NIM ASR does (OGG_OPUS), so a browser's recording costs the gateway a packet copy
instead of a decode. Only the plain transcription sends Ogg/Opus: streamed transcripts,
speaker-attributed ones and speaker references are cut and measured in the gateway, so they
always get decoded samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final, NamedTuple

REMUXED_CODECS: Final = frozenset({"opus"})
MAX_REMUXED_CHANNELS: Final = 2  # Ogg's channel mapping family 0 (mono, stereo)
_MAPPING_FAMILY_BYTE: Final = 18  # in the OpusHead a stream carries as its extradata


class UploadFormat(NamedTuple):
    """How an audio file is named and typed in the multipart form sent to Parakeet."""

    filename: str
    content_type: str
    part_header: bytes  # the `file` part's headers, as the inline form writes them


def _upload_format(filename: str, content_type: str) -> UploadFormat:
    header = (
        f'\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    )
    return UploadFormat(filename, content_type, header.encode())


WAV_16K: Final = _upload_format("audio.wav", "audio/wav")
OGG_OPUS: Final = _upload_format("audio.ogg", "audio/ogg")


def is_remuxed(codec: str, channels: int, extradata: bytes | None) -> bool:
    """Whether a stream of `codec` with `channels` (and its codec's `extradata`, for Opus the
    OpusHead) goes to Parakeet copied into Ogg: Opus in channel mapping family 0, the mono and
    stereo layout every Ogg/Opus reader handles."""
    return (
        codec in REMUXED_CODECS
        and 1 <= channels <= MAX_REMUXED_CHANNELS
        and extradata is not None
        and len(extradata) > _MAPPING_FAMILY_BYTE
        and extradata[_MAPPING_FAMILY_BYTE] == 0
    )


@dataclass(frozen=True, slots=True)
class ParakeetAudio:
    """An upload ready for Parakeet's transcription endpoint: bytes or a file, in `format`."""

    audio: Path | bytes
    format: UploadFormat
    duration_s: float
