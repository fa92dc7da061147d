"""Fakes for the NeMo model objects, with the real call signatures and output shapes.

The test audio encodes who is speaking as pure tones: speaker slot k of a `ToneVoice` sings
at its own frequency, so the fakes can "hear" speakers from the file they are given, window
by window, exactly as the real models only see the audio they are handed.
"""

from __future__ import annotations

import threading
import wave
from dataclasses import dataclass, field
from typing import Any

import numpy as np

RATE = 16_000
FRAME_S = 0.08
VOICE_HZ = {"A": 300.0, "B": 700.0, "C": 1300.0, "D": 2100.0}


def tone(voice: str, seconds: float, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (level * np.sin(2 * np.pi * VOICE_HZ[voice] * t)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.float32)


def wav_bytes(samples: np.ndarray, rate: int = RATE) -> bytes:
    import io

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def ogg_opus_bytes(samples: np.ndarray) -> bytes:
    """16 kHz samples as a browser's recorder would send them: Opus at 48 kHz in Ogg."""
    import io

    import soundfile
    import soxr

    buffer = io.BytesIO()
    upsampled = soxr.resample(samples, RATE, 48_000)
    soundfile.write(buffer, upsampled, 48_000, format="OGG", subtype="OPUS")
    return buffer.getvalue()


def read_file(path: str) -> np.ndarray:
    with wave.open(path, "rb") as f:
        assert f.getframerate() == RATE
        data = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
    return data.astype(np.float32) / 32768


def voices_in(samples: np.ndarray) -> list[str]:
    """Which tone voices are present in a stretch of audio."""
    if len(samples) < 64 or float(np.sqrt(np.mean(samples**2))) < 0.01:
        return []
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    freqs = np.fft.rfftfreq(len(samples), 1 / RATE)
    peak = spectrum.max()
    found = []
    for name, hz in VOICE_HZ.items():
        band = spectrum[(freqs > hz - 40) & (freqs < hz + 40)]
        if band.size and band.max() > 0.25 * peak:
            found.append(name)
    return found


@dataclass
class Hypothesis:
    """NeMo's Hypothesis: `.text` and `.timestamp["word"]` in seconds."""

    text: str
    timestamp: dict[str, list[dict[str, Any]]]


@dataclass
class FakeAsr:
    """One word per 0.4 s of sound, named after the voice heard ("alpha" for A, ...)."""

    calls: list[float] = field(default_factory=list)  # seconds of audio per call
    rendezvous: threading.Barrier | None = None  # meet a diarization running at the same time

    def transcribe(
        self, audio: list[str], batch_size: int = 1, timestamps: bool = True, verbose: bool = True
    ) -> Any:
        assert batch_size == 1
        assert timestamps
        if self.rendezvous is not None:
            self.rendezvous.wait(timeout=30)  # the other model's call must come; a generous guard
        samples = read_file(audio[0])
        self.calls.append(len(samples) / RATE)
        words = []
        step = int(0.4 * RATE)
        names = {"A": "alpha", "B": "bravo", "C": "charlie", "D": "delta"}
        for start in range(0, len(samples) - step + 1, step):
            heard = voices_in(samples[start : start + step])
            if heard:
                words.append(
                    {
                        "word": names[heard[0]],
                        "start": start / RATE,
                        "end": (start + step) / RATE - 0.08,
                        "start_offset": start // 1280,
                        "end_offset": (start + step) // 1280,
                    }
                )
        return [Hypothesis(" ".join(w["word"] for w in words), {"word": words, "segment": []})]


@dataclass
class FakeSortformer:
    """Per 80 ms frame, the voices present; output as Sortformer formats it.

    Returns `(lines, probs)`: lines grouped by speaker in arrival order, NOT sorted by time,
    and a `(1, T, 4)` float array of sigmoid-like activities (0.93 alone, 0.71 in overlap).
    `with_tensor=False` makes it ignore include_tensor_outputs (older NeMo behaviour).
    """

    with_tensor: bool = True
    calls: list[float] = field(default_factory=list)
    broken: bool = False
    rendezvous: threading.Barrier | None = None

    def diarize(
        self,
        audio: str,
        batch_size: int = 1,
        include_tensor_outputs: bool = False,
        verbose: bool = True,
    ) -> Any:
        if self.broken:
            raise RuntimeError("CUDA error: CUBLAS_STATUS_EXECUTION_FAILED")
        if self.rendezvous is not None:
            self.rendezvous.wait(timeout=30)
        samples = read_file(audio)
        self.calls.append(len(samples) / RATE)
        hop = int(FRAME_S * RATE)
        n_frames = int(np.ceil(len(samples) / hop))
        probs = np.full((1, n_frames, 4), 0.03, np.float32)
        order: list[str] = []
        active: list[list[int]] = []
        for f in range(n_frames):
            heard = voices_in(samples[f * hop : (f + 1) * hop])
            slots = []
            for voice in heard:
                if voice not in order:
                    order.append(voice)
                slots.append(order.index(voice))
            for slot in slots:
                probs[0, f, slot] = 0.93 if len(slots) == 1 else 0.71
            active.append(slots)
        lines = []
        for slot in range(len(order)):  # grouped by speaker, as NeMo writes them
            start = None
            for f in range(n_frames + 1):
                on = f < n_frames and slot in active[f]
                if on and start is None:
                    start = f
                elif not on and start is not None:
                    lines.append(f"{start * FRAME_S:.3f} {f * FRAME_S:.3f} speaker_{slot}")
                    start = None
        if include_tensor_outputs and self.with_tensor:
            return [lines], [probs]
        return [lines]


@dataclass
class FakeTitanet:
    """A 192-dim vector pointing at the voice heard; mixing voices mixes the vector.

    `non_finite` makes it answer NaN, as a model on a failing GPU can.
    """

    segment_seconds: list[float] = field(default_factory=list)
    non_finite: bool = False

    def infer_segment(self, segment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.segment_seconds.append(len(segment) / RATE)
        vector = np.zeros((1, 192), np.float32)
        spectrum = np.abs(np.fft.rfft(segment))
        freqs = np.fft.rfftfreq(len(segment), 1 / RATE)
        for n, hz in enumerate(VOICE_HZ.values()):
            vector[0, n * 40] = spectrum[(freqs > hz - 40) & (freqs < hz + 40)].sum()
        if self.non_finite:
            vector[0, 1] = np.nan
        return vector, np.zeros((1, 10), np.float32)


def unit_voice(voice: str) -> np.ndarray:
    vector = np.zeros(192)
    vector[list(VOICE_HZ).index(voice) * 40] = 1.0
    return vector
