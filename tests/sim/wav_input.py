"""Read an upload as the real Parakeet container does: a WAV or an Ogg/Opus file.

A WAV's header is trusted and nothing is resampled: the samples go to the recognizer as if they
were 16 kHz mono, whatever the header says, so audio that was damaged on its way (wrong rate,
wrong sample width, float bytes labelled int16, stray bytes) yields a wrong transcript, exactly
as it would on the GPU. Ogg/Opus (what the gateway remuxes a browser's webm/opus into) is
decoded by libsndfile and resampled to 16 kHz with soxr, as the container does; anything else
in Ogg is refused.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Final

import numpy as np
import soundfile  # type: ignore[import-untyped]
import soxr

EXPECTED_RATE = 16000
_MAX_OGG_SECONDS: Final = 4 * 3600  # the container's default PARAKEET_MAX_AUDIO_S


class AudioInputError(ValueError):
    """The upload is empty or not audio the container reads."""


@dataclass(frozen=True, slots=True)
class DecodedAudio:
    pcm16: bytes  # mono signed 16-bit little-endian, treated as 16 kHz
    header_rate: int

    @property
    def duration(self) -> float:
        """Seconds as the model experiences them (samples / 16 kHz)."""
        return len(self.pcm16) / 2 / EXPECTED_RATE


def decode_wav(data: bytes) -> DecodedAudio:
    """The upload's samples (the name is historical: Ogg/Opus is read too)."""
    if not data:
        raise AudioInputError("The uploaded file is empty.")
    if data[:4] == b"OggS":
        return _decode_ogg_opus(data)
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioInputError("Unsupported audio format: only WAV or Ogg/Opus is accepted.")
    try:
        # soundfile honours the header: format tag, width and channel count; floats are scaled.
        samples, rate = soundfile.read(io.BytesIO(data), dtype="int16", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as err:
        raise AudioInputError(f"Could not decode the WAV file: {_reason(err)}") from err
    if samples.shape[0] == 0:
        raise AudioInputError("The WAV file contains no audio samples.")
    mono = samples.mean(axis=1).astype(np.int16) if samples.shape[1] > 1 else samples[:, 0]
    return DecodedAudio(pcm16=mono.astype("<i2").tobytes(), header_rate=int(rate))


def _decode_ogg_opus(data: bytes) -> DecodedAudio:
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as sound:
            if sound.subtype != "OPUS":
                raise AudioInputError(f"An Ogg file must hold Opus, not {sound.subtype.lower()}.")
            rate = int(sound.samplerate)
            samples = sound.read(
                frames=_MAX_OGG_SECONDS * rate + 1, dtype="float32", always_2d=True
            )
    except (RuntimeError, soundfile.LibsndfileError) as err:
        raise AudioInputError(f"Could not decode the Ogg/Opus file: {_reason(err)}") from err
    if samples.shape[0] > _MAX_OGG_SECONDS * rate:
        raise AudioInputError("The Ogg/Opus file is longer than the container accepts.")
    if samples.shape[0] == 0:
        raise AudioInputError("The Ogg/Opus file contains no audio samples.")
    mono = soxr.resample(samples.mean(axis=1), rate, EXPECTED_RATE)
    pcm = np.clip(np.round(mono * 32767), -32768, 32767).astype("<i2")
    return DecodedAudio(pcm16=pcm.tobytes(), header_rate=rate)


def _reason(err: Exception) -> str:
    return err.error_string if isinstance(err, soundfile.LibsndfileError) else str(err)
