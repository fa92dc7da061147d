"""Conversations with known turns built from real recorded voices (tests and evaluation).

`data/voices/*.flac` hold the clean single-speaker stretches of 12 speakers taken from the
pyannote.audio 4.0.7 test recordings (sdist `tests/data`, AMI-style meeting audio, and the
wheel's `sample.wav` phone call) and 5 professional voices from Debian's Asterisk prompt
packages (see data/README.md); `data/voices/clips.json` lists each clip's span. The Asterisk
voices also have enrolment clips (`data/enrolment/`): other prompts of the same speaker, never
part of a conversation.
`TUNING_VOICES` are the ones thresholds may be chosen on; `HELDOUT_VOICES` only report.
A conversation takes consecutive pieces of each speaker's material in turn, separated by
pauses, so every turn's speaker and time is exactly known.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import soundfile

DATA = Path(__file__).parent / "data"
VOICES_DIR = DATA / "voices"
ENROLMENT_DIR = DATA / "enrolment"
RATE = 16_000
# Thresholds are chosen on these (the voices the earlier tuning used, plus the phone call)...
TUNING_VOICES = ("FEE083", "MEE009", "FEE078", "MEO069", "MEE012", "FEO072", "DIANE", "SHEILA")
# ...and figures are reported on these, never seen by any choice of ours (3 men, 6 women).
HELDOUT_VOICES = ("ALLISON", "CARLO", "MEE068", "JUNE", "MEE075", "IRINA", "FEE087", "PAOLA",
                  "FEO070")  # fmt: skip


@dataclass(frozen=True, slots=True)
class RefTurn:
    """One reference turn: who spoke from `start` to `end` (seconds)."""

    start: float
    end: float
    speaker: str


@dataclass(frozen=True, slots=True)
class Conversation:
    samples: np.ndarray  # int16, 16 kHz mono
    turns: list[RefTurn]

    @property
    def duration(self) -> float:
        return len(self.samples) / RATE

    @property
    def speakers(self) -> list[str]:
        return list(dict.fromkeys(t.speaker for t in self.turns))


def voice_names() -> list[str]:
    """Speakers in the bank, most material first."""
    clips = json.loads((VOICES_DIR / "clips.json").read_text())
    return sorted(clips, key=lambda name: -clips[name]["seconds"])


@cache
def voice(name: str) -> np.ndarray:
    """All clean speech of one speaker (int16)."""
    samples, rate = soundfile.read(VOICES_DIR / f"{name}.flac", dtype="int16")
    assert rate == RATE
    return np.asarray(samples)


def build_conversation(
    speakers: list[str],
    *,
    duration_s: float,
    seed: int = 0,
    turn_s: tuple[float, float] = (2.0, 6.0),
    pause_s: tuple[float, float] = (0.3, 1.2),
    keep_back: float = 0.0,
) -> Conversation:
    """Turns of random length from `speakers` (each speaks first once, in order).

    `keep_back` leaves that share of each voice's material unused (the end of it), so an
    enrolment clip cut from there was never heard in the conversation.
    """
    rng = np.random.default_rng(seed)
    cursor = dict.fromkeys(speakers, 0)
    parts: list[np.ndarray] = []
    turns: list[RefTurn] = []
    t = 0.0
    previous: str | None = None
    n = 0
    while t < duration_s:
        if n < len(speakers):
            name = speakers[n]
        else:
            choices = [s for s in speakers if s != previous] or speakers
            name = choices[int(rng.integers(len(choices)))]
        material = voice(name)
        material = material[: len(material) - int(len(material) * keep_back)]
        length = int(rng.uniform(*turn_s) * RATE)
        start = cursor[name] % max(len(material) - length, 1)
        piece = material[start : start + length]
        cursor[name] = start + length
        # A little gain variation, as voices are never equally loud in a room.
        piece = np.clip(piece * rng.uniform(0.6, 1.0), -32768, 32767).astype(np.int16)
        parts.append(piece)
        turns.append(RefTurn(t, t + len(piece) / RATE, name))
        t += len(piece) / RATE
        pause = np.zeros(int(rng.uniform(*pause_s) * RATE), dtype=np.int16)
        parts.append(pause)
        t += len(pause) / RATE
        previous = name
        n += 1
    return Conversation(np.concatenate(parts), turns)


def enrolment_clip(name: str, share: float = 0.35) -> np.ndarray:
    """The last `share` of a voice's material (what `keep_back` leaves out), int16."""
    material = voice(name)
    return material[len(material) - int(len(material) * share) :]


def enrolment_files(name: str) -> list[Path]:
    """A voice's own enrolment clips (8 kHz FLAC), empty for voices without more material."""
    return sorted(ENROLMENT_DIR.glob(f"{name}-*.flac"))


def enrolment_samples(path: Path) -> np.ndarray:
    """One enrolment clip as 16 kHz int16 (what the gateway decodes it to)."""
    import librosa

    samples, rate = soundfile.read(path, dtype="float32")
    resampled = librosa.resample(np.asarray(samples), orig_sr=rate, target_sr=RATE)
    return np.clip(resampled * 32768, -32768, 32767).astype(np.int16)


def wav_bytes(samples: np.ndarray, rate: int = RATE) -> bytes:
    """16-bit PCM WAV."""
    import io

    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
