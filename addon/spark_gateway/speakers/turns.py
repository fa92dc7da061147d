"""Group attributed words into speaker turns."""

from __future__ import annotations

from collections.abc import Sequence

from .records import AttributedWord, Turn
from .tokens import join_tokens

DEFAULT_MAX_PAUSE_S = 1.5
# Sortformer's mean sigmoid for a clearly active speaker sits well above this; turns below
# it are mostly overlapped speech or the nearest-edge fallback.
DEFAULT_LOW_CONFIDENCE = 0.6


def build_turns(
    words: Sequence[AttributedWord],
    *,
    max_pause_s: float = DEFAULT_MAX_PAUSE_S,
    low_confidence: float = DEFAULT_LOW_CONFIDENCE,
) -> list[Turn]:
    """Break on a speaker change or a pause longer than `max_pause_s` (words in time order)."""
    turns: list[Turn] = []
    group: list[AttributedWord] = []
    for item in words:
        if group and (
            item.speaker != group[-1].speaker or item.word.start - group[-1].word.end > max_pause_s
        ):
            turns.append(_make_turn(group, low_confidence))
            group = []
        group.append(item)
    if group:
        turns.append(_make_turn(group, low_confidence))
    return turns


def _make_turn(group: list[AttributedWord], low_confidence: float) -> Turn:
    confidence = _turn_confidence(group)
    return Turn(
        start=group[0].word.start,
        end=max(item.word.end for item in group),
        speaker=group[0].speaker,
        text=join_tokens(item.word.text for item in group),
        confidence=confidence,
        low_confidence=confidence is not None and confidence < low_confidence,
        word_count=len(group),
    )


def _turn_confidence(group: list[AttributedWord]) -> float | None:
    """Duration-weighted mean of the words' confidences; None when the diarizer gave none.

    Words placed by the nearest-edge fallback count at half their segment's confidence: the
    diarizer never saw that speaker there.
    """
    total = weight = 0.0
    for item in group:
        if item.confidence is None:
            continue
        w = max(item.word.end - item.word.start, 0.01)
        total += w * (item.confidence if item.overlapped else item.confidence / 2)
        weight += w
    return round(total / weight, 4) if weight > 0 else None
