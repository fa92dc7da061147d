"""Assign each ASR word to a speaker by time overlap with the diarization segments.

The speaker whose segments overlap the word the most wins. A word no segment touches (the
diarizer's pauses do not line up with the ASR's word edges) goes to the segment with the
nearest edge; WhisperX's nearest-midpoint rule can pick a long segment far away instead.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

from .records import AttributedWord, SpeakerSegment, Word

# Parakeet reports some words with zero length; give them a small width so they overlap.
_MIN_WORD_S = 0.01


@dataclass(frozen=True, slots=True)
class _SegmentIndex:
    segments: list[SpeakerSegment]  # sorted by start
    starts: list[float]
    max_end: list[float]  # running maximum of `end` over segments[: i + 1]
    max_end_at: list[int]  # index of the segment holding that maximum


def _index(segments: Sequence[SpeakerSegment]) -> _SegmentIndex:
    ordered = sorted(segments, key=lambda s: (s.start, s.end))
    max_end: list[float] = []
    max_end_at: list[int] = []
    best, best_at = float("-inf"), -1
    for i, seg in enumerate(ordered):
        if seg.end > best:
            best, best_at = seg.end, i
        max_end.append(best)
        max_end_at.append(best_at)
    return _SegmentIndex(ordered, [s.start for s in ordered], max_end, max_end_at)


def assign_speakers(
    words: Sequence[Word],
    segments: Sequence[SpeakerSegment],
    *,
    default_speaker: str = "Speaker_0",
) -> list[AttributedWord]:
    """Return the words in time order, each with its speaker and that speaker's confidence."""
    ordered_words = sorted(words, key=lambda w: (w.start, w.end))
    if not segments:
        return [AttributedWord(w, default_speaker, None, overlapped=False) for w in ordered_words]
    index = _index(segments)
    return [_assign_one(w, index) for w in ordered_words]


def _assign_one(word: Word, index: _SegmentIndex) -> AttributedWord:
    start, end = word.start, word.end
    if end - start < _MIN_WORD_S:
        mid = (start + end) / 2
        start, end = mid - _MIN_WORD_S / 2, mid + _MIN_WORD_S / 2
    segs = index.segments
    hi = bisect_left(index.starts, end)  # segments[hi:] start at or after the word's end
    overlap: dict[str, float] = {}
    weighted_conf: dict[str, float] = {}
    conf_weight: dict[str, float] = {}
    j = hi - 1
    # Walk back only while some earlier segment can still reach the word.
    while j >= 0 and index.max_end[j] > start:
        seg = segs[j]
        inter = min(seg.end, end) - max(seg.start, start)
        if inter > 0:
            overlap[seg.speaker] = overlap.get(seg.speaker, 0.0) + inter
            if seg.confidence is not None:
                weighted_conf[seg.speaker] = weighted_conf.get(seg.speaker, 0.0) + (
                    inter * seg.confidence
                )
                conf_weight[seg.speaker] = conf_weight.get(seg.speaker, 0.0) + inter
        j -= 1
    if overlap:
        speaker = max(overlap, key=lambda spk: overlap[spk])
        weight = conf_weight.get(speaker, 0.0)
        confidence = weighted_conf[speaker] / weight if weight > 0 else None
        return AttributedWord(word, speaker, confidence, overlapped=True)
    return AttributedWord(word, *_nearest_edge(start, end, hi, index), overlapped=False)


def _nearest_edge(
    start: float, end: float, hi: int, index: _SegmentIndex
) -> tuple[str, float | None]:
    before = index.segments[index.max_end_at[hi - 1]] if hi > 0 else None
    after = index.segments[hi] if hi < len(index.segments) else None
    if after is None or (before is not None and start - before.end <= after.start - end):
        assert before is not None  # at least one segment exists
        return before.speaker, before.confidence
    return after.speaker, after.confidence
