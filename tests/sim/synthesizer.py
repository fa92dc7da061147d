"""Real speech for the Magpie fake: flite in a subprocess, resampled with PyAV to the asked rate."""

from __future__ import annotations

import asyncio
import math
import shutil
import tempfile
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np


@dataclass(frozen=True, slots=True)
class FliteVoice:
    """A flite voice plus prosody tweaks, so each Magpie voice sounds different."""

    name: str
    pitch_hz: float | None = None  # int_f0_target_mean
    stretch: float | None = None  # duration_stretch (>1 is slower)

    def args(self) -> list[str]:
        args = ["-voice", self.name]
        if self.pitch_hz is not None:
            args += ["--setf", f"int_f0_target_mean={self.pitch_hz}"]
        if self.stretch is not None:
            args += ["--setf", f"duration_stretch={self.stretch}"]
        return args


class SynthesisError(RuntimeError):
    """flite failed; the route answers 500."""


class Synthesizer:
    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self._flite = shutil.which("flite")

    async def synthesize(self, text: str, voice: FliteVoice, rate: int) -> bytes:
        """Mono signed 16-bit PCM of the spoken text at `rate` Hz."""
        loop = asyncio.get_running_loop()
        if self._flite is None:
            return await loop.run_in_executor(self._executor, _tone, text, rate)
        with tempfile.TemporaryDirectory(prefix="magpie-") as folder:
            target = Path(folder) / "speech.wav"
            process = await asyncio.create_subprocess_exec(
                self._flite,
                *voice.args(),
                "-t",
                text,
                "-o",
                str(target),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            _, stderr = await process.communicate()
            if process.returncode != 0 or not target.exists():
                raise SynthesisError(f"flite failed: {stderr.decode(errors='replace').strip()}")
            return await loop.run_in_executor(self._executor, _resample_file, str(target), rate)


def _resample_file(path: str, rate: int) -> bytes:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    chunks: list[bytes] = []
    with av.open(path) as container:
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                chunks.append(bytes(out.planes[0])[: out.samples * 2])
        for out in resampler.resample(None):
            chunks.append(bytes(out.planes[0])[: out.samples * 2])
    return b"".join(chunks)


def _tone(text: str, rate: int) -> bytes:
    """Without flite: one deterministic beep per word, so length still follows the text."""
    words = max(1, len(text.split()))
    seconds = 0.3 * words
    t = np.arange(int(seconds * rate)) / rate
    frequency = 220 + (sum(map(ord, text)) % 200)
    wave = 0.3 * np.sin(2 * math.pi * frequency * t) * (np.sin(math.pi * t / 0.3 * 1) ** 2)
    pcm: bytes = (wave * 32767).astype("<i2").tobytes()
    return pcm
