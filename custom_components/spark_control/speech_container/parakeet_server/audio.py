"""Uploaded audio → 16 kHz mono float samples, and windows cut at pauses for long inputs.

Two formats are accepted, each refused with a clear 400 when it is anything else:
- WAV holding 16 kHz audio (what the gateway sends after decoding), read as it is;
- Ogg/Opus (what the gateway remuxes a browser's webm/opus into without decoding it; NVIDIA's
  Riva/NIM ASR accepts OGG_OPUS too): decoded by libsndfile at the stream's rate and resampled
  to 16 kHz with soxr, block by block, so memory holds the 16 kHz result and one block.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Final

import numpy as np
import soundfile
import soxr  # pinned in requirements.txt (nemo-toolkit[asr] brings it through librosa too)

SAMPLE_RATE = 16_000
_BLOCK_FRAMES: Final = 1 << 16  # about 1.4 s at 48 kHz per decoded block


class AudioError(ValueError):
    """The upload is not audio this server accepts (HTTP 400)."""


class AudioTooLong(ValueError):
    """The audio is longer than the configured maximum (HTTP 413)."""


def read_audio(data: bytes, *, max_audio_s: float) -> np.ndarray:
    """Mono float32 samples at 16 kHz from a 16 kHz WAV or an Ogg/Opus upload."""
    if not data:
        raise AudioError("the uploaded file is empty")
    if data[:4] == b"OggS":
        return _read_ogg_opus(data, max_audio_s=max_audio_s)
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError("only WAV (16 kHz) or Ogg/Opus is accepted")
    return _read_wav(data, max_audio_s=max_audio_s)


def _read_wav(data: bytes, *, max_audio_s: float) -> np.ndarray:
    try:
        info = soundfile.info(io.BytesIO(data))
    except (RuntimeError, soundfile.LibsndfileError) as err:
        raise AudioError(f"could not read the WAV header: {_reason(err)}") from err
    if info.samplerate != SAMPLE_RATE:
        raise AudioError(f"sample rate is {info.samplerate} Hz; this server needs 16000 Hz")
    if info.frames / SAMPLE_RATE > max_audio_s:
        raise AudioTooLong(
            f"audio is {info.frames / SAMPLE_RATE:.0f} s; the maximum is {max_audio_s:.0f} s"
        )
    try:
        samples, _ = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as err:
        raise AudioError(f"could not decode the WAV data: {_reason(err)}") from err
    if samples.shape[0] == 0:
        raise AudioError("the WAV file holds no samples")
    return np.ascontiguousarray(samples.mean(axis=1), dtype=np.float32)


def _read_ogg_opus(data: bytes, *, max_audio_s: float) -> np.ndarray:
    """Decoded and resampled block by block; the length is counted as it decodes, since the
    end position a file declares may lie."""
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as sound:
            if sound.format != "OGG" or sound.subtype != "OPUS":
                raise AudioError(f"an Ogg file must hold Opus, not {sound.subtype.lower()}")
            if sound.frames / sound.samplerate > max_audio_s:
                raise AudioTooLong(
                    f"audio declares {sound.frames / sound.samplerate:.0f} s; "
                    f"the maximum is {max_audio_s:.0f} s"
                )
            max_frames = int(max_audio_s * sound.samplerate)
            resampler = soxr.ResampleStream(sound.samplerate, SAMPLE_RATE, 1, dtype="float32")
            parts: list[np.ndarray] = []
            decoded = 0
            for block in sound.blocks(_BLOCK_FRAMES, dtype="float32", always_2d=True):
                decoded += block.shape[0]
                if decoded > max_frames:
                    raise AudioTooLong(f"audio is longer than the {max_audio_s:.0f} s allowed")
                mono = np.ascontiguousarray(block.mean(axis=1), dtype=np.float32)
                parts.append(resampler.resample_chunk(mono))
            parts.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    except (RuntimeError, soundfile.LibsndfileError) as err:
        raise AudioError(f"could not decode the Ogg/Opus data: {_reason(err)}") from err
    samples = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    if samples.size == 0:
        raise AudioError("the Ogg/Opus file holds no samples")
    return samples


def _reason(err: Exception) -> str:
    """libsndfile's own words, without the repr of the in-memory file it was given."""
    return err.error_string if isinstance(err, soundfile.LibsndfileError) else str(err)


def write_wav(path: Path, samples: np.ndarray) -> None:
    """16 kHz mono PCM16 file, the input NeMo's file-based APIs read."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.tobytes())


@dataclass(frozen=True, slots=True)
class Window:
    """A span of the input processed on its own (seconds)."""

    start_s: float
    end_s: float

    def slice(self, samples: np.ndarray) -> np.ndarray:
        return samples[round(self.start_s * SAMPLE_RATE) : round(self.end_s * SAMPLE_RATE)]


def plan_windows(samples: np.ndarray, *, window_s: float, search_s: float) -> list[Window]:
    """Back-to-back windows of at most `window_s`, each cut at the quietest 20 ms near its end."""
    duration = len(samples) / SAMPLE_RATE
    if duration <= window_s:
        return [Window(0.0, duration)]
    frame = SAMPLE_RATE // 50
    n = len(samples) // frame
    power = np.mean(samples[: n * frame].reshape(n, frame) ** 2, axis=1)
    power = np.convolve(power, np.ones(20) / 20, mode="same")  # pauses of ~0.4 s
    cuts = [0.0]
    while duration - cuts[-1] > window_s:
        hi = int((cuts[-1] + window_s) * 50)
        lo = max(int((cuts[-1] + window_s - min(search_s, window_s / 2)) * 50), 1)
        best = lo + int(np.argmin(power[lo:hi])) if hi > lo else hi
        cuts.append(best / 50)
    cuts.append(duration)
    return [Window(a, b) for a, b in pairwise(cuts)]
