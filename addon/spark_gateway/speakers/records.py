"""Typed records shared by the speaker-attribution steps (times in seconds)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class Word:
    """One ASR token with its time span."""

    start: float
    end: float
    text: str


@dataclass(frozen=True, slots=True)
class SpeakerSegment:
    """A stretch of time attributed to one speaker by the diarizer.

    `voice` is the unit print of this stretch's own audio, when the diarizer sent one: it can
    name a person whom the diarizer folded into another person's slot.
    """

    start: float
    end: float
    speaker: str
    confidence: float | None = None
    voice: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class AttributedWord:
    """A word with the speaker it was assigned to."""

    word: Word
    speaker: str
    confidence: float | None
    overlapped: bool  # False when assigned by the nearest-edge fallback


@dataclass(frozen=True, slots=True)
class Turn:
    """Consecutive words of one speaker without a long pause.

    `words` keep their times for subtitle cues (empty when a turn was built without them).
    """

    start: float
    end: float
    speaker: str
    text: str
    confidence: float | None
    low_confidence: bool
    word_count: int
    words: tuple[Word, ...] = field(default=(), repr=False)
