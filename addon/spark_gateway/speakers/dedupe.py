"""Keep each word and diarization segment once when chunks overlap.

A word belongs to the chunk whose owned span holds its midpoint; segments are clipped to
the owned span. Cut points sit in pauses, so this drops the duplicate copy and keeps the
one heard with context on both sides.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from .chunking import Chunk
from .records import SpeakerSegment, Word


def shift_words(words: Iterable[Word], offset_s: float) -> list[Word]:
    """Chunk-relative word times to recording times."""
    return [Word(w.start + offset_s, w.end + offset_s, w.text) for w in words]


def shift_segments(segments: Iterable[SpeakerSegment], offset_s: float) -> list[SpeakerSegment]:
    """Chunk-relative segment times to recording times."""
    return [replace(s, start=s.start + offset_s, end=s.end + offset_s) for s in segments]


def owned_words(words: Iterable[Word], chunk: Chunk, *, is_last: bool) -> list[Word]:
    """Words (recording times) whose midpoint lies in the chunk's owned span."""
    kept = []
    for word in words:
        mid = (word.start + word.end) / 2
        if chunk.own_start_s <= mid < chunk.own_end_s or (is_last and mid >= chunk.own_end_s):
            kept.append(word)
    return kept


def owned_segments(segments: Iterable[SpeakerSegment], chunk: Chunk) -> list[SpeakerSegment]:
    """Segments (recording times) clipped to the chunk's owned span."""
    kept = []
    for seg in segments:
        start = max(seg.start, chunk.own_start_s)
        end = min(seg.end, chunk.own_end_s)
        if end > start:
            kept.append(replace(seg, start=start, end=end))
    return kept
