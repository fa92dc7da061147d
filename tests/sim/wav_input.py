"""Read an uploaded WAV as the real Parakeet container does: trust the header, resample nothing.

The samples go to the recognizer as if they were 16 kHz mono, whatever the header says, so audio
that was damaged on its way (wrong rate, wrong sample width, float bytes labelled int16, stray
bytes) yields a wrong transcript, exactly as it would on the GPU.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import soundfile  # type: ignore[import-untyped]

EXPECTED_RATE = 16000


class AudioInputError(ValueError):
    """The upload is empty or not a WAV file."""


@dataclass(frozen=True, slots=True)
class DecodedAudio:
    pcm16: bytes  # mono signed 16-bit little-endian, treated as 16 kHz
    header_rate: int

    @property
    def duration(self) -> float:
        """Seconds as the model experiences them (samples / 16 kHz)."""
        return len(self.pcm16) / 2 / EXPECTED_RATE


def decode_wav(data: bytes) -> DecodedAudio:
    if not data:
        raise AudioInputError("The uploaded file is empty.")
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioInputError("Unsupported audio format: only WAV (RIFF/WAVE) is accepted.")
    try:
        # soundfile honours the header: format tag, width and channel count; floats are scaled.
        samples, rate = soundfile.read(io.BytesIO(data), dtype="int16", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as err:
        raise AudioInputError(f"Could not decode the WAV file: {err}") from err
    if samples.shape[0] == 0:
        raise AudioInputError("The WAV file contains no audio samples.")
    mono = samples.mean(axis=1).astype(np.int16) if samples.shape[1] > 1 else samples[:, 0]
    return DecodedAudio(pcm16=mono.astype("<i2").tobytes(), header_rate=int(rate))
