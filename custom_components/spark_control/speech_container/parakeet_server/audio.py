"""Uploaded WAV → 16 kHz mono float samples, and windows cut at pauses for long inputs."""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
import soundfile

SAMPLE_RATE = 16_000


class AudioError(ValueError):
    """The upload is not audio this server accepts (HTTP 400)."""


class AudioTooLong(ValueError):
    """The audio is longer than the configured maximum (HTTP 413)."""


def read_wav(data: bytes, *, max_audio_s: float) -> np.ndarray:
    """Mono float32 samples at 16 kHz; anything else is refused rather than guessed."""
    if not data:
        raise AudioError("the uploaded file is empty")
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError("only WAV (RIFF/WAVE) is accepted; send 16 kHz mono PCM")
    try:
        info = soundfile.info(io.BytesIO(data))
    except (RuntimeError, soundfile.LibsndfileError) as err:
        raise AudioError(f"could not read the WAV header: {err}") from err
    if info.samplerate != SAMPLE_RATE:
        raise AudioError(f"sample rate is {info.samplerate} Hz; this server needs 16000 Hz")
    if info.frames / SAMPLE_RATE > max_audio_s:
        raise AudioTooLong(
            f"audio is {info.frames / SAMPLE_RATE:.0f} s; the maximum is {max_audio_s:.0f} s"
        )
    try:
        samples, _ = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as err:
        raise AudioError(f"could not decode the WAV data: {err}") from err
    if samples.shape[0] == 0:
        raise AudioError("the WAV file holds no samples")
    return np.ascontiguousarray(samples.mean(axis=1), dtype=np.float32)


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
