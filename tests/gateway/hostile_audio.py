"""Hostile uploads, built byte by byte: the files that crashed or bloated the gateway (issue #11).

Shared by the regression tests, the fuzz suite and the memory benchmark, so all three replay
the same attacks.
"""

from __future__ import annotations

import io
import struct

import av
import numpy as np


def wav_file(
    *,
    tag: int = 1,
    channels: int = 1,
    rate: int = 16000,
    bits: int = 16,
    block_align: int | None = None,
    data: bytes = b"\x00\x01" * 8000,
    data_size: int | None = None,
    extra_fmt: bytes = b"",
) -> bytes:
    """A RIFF/WAVE file with exactly the given `fmt ` fields (no validation: that's the point)."""
    align = channels * bits // 8 if block_align is None else block_align
    byte_rate = (rate * align) & 0xFFFFFFFF
    fmt = struct.pack("<HHIIHH", tag, channels, rate, byte_rate, align & 0xFFFF, bits) + extra_fmt
    size = len(data) if data_size is None else data_size
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


# Each of these made PyAV open a stream without a codec context and segfault on decoding it,
# taking the whole gateway down (11 of 27 fuzzed headers).
CRASHING_WAVS: dict[str, bytes] = {
    "format tag 0": wav_file(tag=0),
    "format tag 3 with 16 bits": wav_file(tag=3),
    "format tag 0x1234": wav_file(tag=0x1234),
    "format tag 0xFFFF": wav_file(tag=0xFFFF),
    "format tag 0xFFFE without extension": wav_file(tag=0xFFFE),
    "PCM with 0 bits per sample": wav_file(bits=0, block_align=2),
}


# Small files that declare hours of audio; decoding them whole took ~1 GB each.
def wav_at_one_hertz() -> bytes:
    """28 KB of PCM declared at 1 Hz: 3.9 hours once resampled to 16 kHz."""
    return wav_file(rate=1, data=b"\x00\x00" * 14000)


def silent_flac(seconds: float, rate: int = 8000) -> bytes:
    """A FLAC of silence (compresses to almost nothing: 3 h 50 min is about 2.6 MB)."""
    return _silence("flac", "flac", rate, seconds)


def repackaged_opus(
    opus: bytes, container: str, *, copies: int = 1, last_pts: int | None = None, **options: str
) -> bytes:
    """The Opus packets of `opus` in another container, untouched (FFmpeg's muxer), written to
    `copies` streams at once, the last packet restamped to `last_pts` when given."""
    out = io.BytesIO()
    with (
        av.open(io.BytesIO(opus)) as source,
        av.open(out, "w", format=container, container_options=options) as target,
    ):
        stream = source.streams.audio[0]
        streams = [target.add_stream_from_template(stream) for _ in range(copies)]
        packets = [packet for packet in source.demux(stream) if packet.dts is not None]
        for index, packet in enumerate(packets):
            if last_pts is not None and index == len(packets) - 1:
                packet.pts = packet.dts = last_pts
            for copy in streams:
                packet.stream = copy
                target.mux(packet)
    return out.getvalue()


def hostile_opus(webm: bytes) -> dict[str, bytes]:
    """Variants of a browser's webm/opus recording (`webm`) that must not reach Parakeet."""
    head = webm.find(b"OpusHead")
    codec = webm.find(b"A_OPUS")
    return {
        "cut inside the header": webm[:150],
        "damaged OpusHead": webm[:head] + b"XpusHead" + webm[head + 8 :],
        "unknown codec id": webm[:codec] + b"A_OPUX" + webm[codec + 6 :],
        # A live recording (no declared length, as MediaRecorder writes) stamped 5 hours in.
        "timestamps past the cap": repackaged_opus(
            webm, "webm", last_pts=5 * 3600 * 1000, live="1"
        ),
        "20 streams": repackaged_opus(webm, "webm", copies=20),
        "Ogg cut before its audio": repackaged_opus(webm, "ogg")[:100],
    }


def silent_webm_opus(seconds: float) -> bytes:
    """A live webm/opus of silence, as a browser streams it (no declared length): about
    1.4 MiB an hour, each 20 ms packet a few bytes."""
    return _silence("webm", "libopus", 48000, seconds, container_options={"live": "1"})


def _silence(
    container: str,
    codec: str,
    rate: int,
    seconds: float,
    container_options: dict[str, str] | None = None,
) -> bytes:
    """`seconds` of mono silence encoded with `codec` in `container`, ten seconds a frame."""
    buffer = io.BytesIO()
    with av.open(
        buffer, mode="w", format=container, container_options=container_options or {}
    ) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "mono"
        block = np.zeros((1, rate * 10), dtype=np.int16)
        pts = 0
        remaining = int(seconds * rate)
        while remaining > 0:
            n = min(remaining, block.shape[1])
            frame = av.AudioFrame.from_ndarray(block[:, :n], format="s16", layout="mono")
            frame.sample_rate = rate
            frame.pts = pts
            pts += n
            remaining -= n
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()
