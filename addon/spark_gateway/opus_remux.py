"""Opus packets copied from any container into Ogg, without decoding them.

A browser records webm/opus; Parakeet decodes Ogg/Opus itself (`parakeet_formats.py`). Copying
the packets costs the decoder process a fraction of decoding them (0.5 ms against 2.8 ms for a
1 s voice command). The copy is still checked: the stream was vetted by `check_stream` (rate,
channels, declared length, stream count), its OpusHead is read, and every packet's end time
is held against the audio budget as it is copied, so a file whose timestamps run past it is
refused here rather than by the GPU node. What the packets hold is only read by the
container's decoder, which answers 400 for damaged ones.
"""

from __future__ import annotations

import io
from typing import BinaryIO, Final, NamedTuple

import av
from av.audio.stream import AudioStream
from av.container import InputContainer

from .audio_errors import AudioDecodeError


class RemuxedOgg(NamedTuple):
    """What `remux_to_ogg` made: the audio's length and, for a short upload, the Ogg itself."""

    duration_s: float
    ogg: bytes | None  # None: the Ogg is in the `spill_to` file


_OPUS_HEAD_BYTES: Final = 19  # RFC 7845 5.1, channel mapping family 0


def _check_opus_head(head: bytes | None, channels: int) -> None:
    """The identification header Ogg carries as its first page (RFC 7845): FFmpeg copies it
    unread, so a damaged one would only be found by the GPU node's decoder."""
    if (
        head is None
        or len(head) < _OPUS_HEAD_BYTES
        or head[:8] != b"OpusHead"
        or head[8] >> 4 != 0  # major version 0; minor versions are compatible
        or head[9] != channels
    ):
        raise AudioDecodeError("the Opus stream's identification header (OpusHead) is damaged")


def remux_to_ogg(
    container: InputContainer,
    stream: AudioStream,
    *,
    spill_to: str | None,
    max_duration_s: float,
) -> RemuxedOgg:
    """Copy `stream`'s packets into an Ogg file: bytes when `spill_to` is None, else that file
    (created here, exclusively)."""
    _check_opus_head(stream.codec_context.extradata, stream.codec_context.channels)
    time_base = stream.time_base
    if time_base is None or time_base <= 0:
        raise AudioDecodeError("the audio stream has no time base")
    limit = max_duration_s / time_base  # in the stream's ticks
    target: BinaryIO = io.BytesIO() if spill_to is None else open(spill_to, "xb")  # noqa: SIM115
    start = end = None
    try:
        with av.open(target, mode="w", format="ogg") as output:
            copy = output.add_stream_from_template(stream)
            for packet in container.demux(stream):
                if packet.dts is None:  # the demuxer's empty packet at the end
                    continue
                if packet.pts is None:
                    raise AudioDecodeError("an audio packet carries no timestamp")
                start = packet.pts if start is None else min(start, packet.pts)
                packet_end = packet.pts + (packet.duration or 0)
                end = packet_end if end is None else max(end, packet_end)
                if end > limit:
                    raise AudioDecodeError(
                        f"the audio is longer than the {max_duration_s:.0f} s allowed"
                    )
                packet.stream = copy
                output.mux(packet)
        if start is None or end is None or end <= start:
            raise AudioDecodeError("the audio holds no samples")
        ogg = target.getvalue() if isinstance(target, io.BytesIO) else None
        return RemuxedOgg(float((end - max(start, 0)) * time_base), ogg)
    finally:
        target.close()
