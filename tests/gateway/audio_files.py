"""Making test uploads the way browsers and apps do, independently of the code under test."""

from __future__ import annotations

import io
import re

import av
import numpy as np
import numpy.typing as npt


def encode_with_pyav(
    samples: npt.NDArray[np.int16], rate: int, container: str, codec: str
) -> bytes:
    """Mono s16 samples → a file in `container` with `codec` (e.g. webm/libopus like Chrome)."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as out:
        stream_rate = 48000 if codec == "libopus" else rate
        stream = out.add_stream(codec, rate=stream_rate)
        stream.layout = "mono"
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=stream_rate)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        pts = 0
        for chunk in [*resampler.resample(frame), *resampler.resample(None)]:
            chunk.pts = pts
            pts += chunk.samples
            for packet in stream.encode(chunk):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def duration_of(data: bytes) -> float:
    """Decoded duration of any audio file, measured by PyAV from the samples."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.rate


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def word_overlap(expected: str, heard: str) -> float:
    """Share of the expected words that were recognised."""
    want = words(expected)
    got = set(words(heard))
    return sum(w in got for w in want) / len(want)
