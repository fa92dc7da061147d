"""Group attributed words into speaker turns (vectorised over the words)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from .assignment import Assignment
from .records import AttributedWord, Turn
from .tokens import join_token_groups

DEFAULT_MAX_PAUSE_S = 1.5
# Sortformer's mean sigmoid for a clearly active speaker sits well above this; turns below
# it are mostly overlapped speech or the nearest-edge fallback. Chosen with the link threshold
# on the CAM++ stand-in's tuning voices (GE2E's chose 0.6), to be chosen again on the GPU.
DEFAULT_LOW_CONFIDENCE = 0.5


def turns_from_assignment(
    assignment: Assignment,
    *,
    max_pause_s: float = DEFAULT_MAX_PAUSE_S,
    low_confidence: float = DEFAULT_LOW_CONFIDENCE,
) -> list[Turn]:
    """Break on a speaker change or a pause longer than `max_pause_s`.

    A turn's confidence is the duration-weighted mean of its words' confidences (None when
    the diarizer gave none); words placed by the nearest-edge fallback count at half their
    segment's confidence, since the diarizer never heard that speaker there.
    """
    words = assignment.words
    n = len(words)
    if n == 0:
        return []
    start, end = assignment.start, assignment.end
    spk = assignment.speaker_of
    breaks = np.flatnonzero((spk[1:] != spk[:-1]) | (start[1:] - end[:-1] > max_pause_s)) + 1
    bounds = np.concatenate([[0], breaks])
    weight = np.maximum(end - start, 0.01)
    conf = np.where(assignment.overlapped, assignment.confidence, assignment.confidence / 2)
    known = ~np.isnan(conf)
    total = np.add.reduceat(np.where(known, weight * np.nan_to_num(conf), 0.0), bounds)
    weights = np.add.reduceat(np.where(known, weight, 0.0), bounds)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.round(total / weights, 4)
    texts = [w.text for w in words]
    edges = [*bounds.tolist(), n]
    joined = join_token_groups(texts[lo:hi] for lo, hi in pairwise(edges))
    labels = assignment.speakers
    turns = []
    # Plain Python lists in the loop: indexing numpy scalars one by one is slow.
    for lo, hi, t_start, t_end, speaker, c, w, text in zip(
        edges, edges[1:], start[bounds].tolist(), np.maximum.reduceat(end, bounds).tolist(),
        spk[bounds].tolist(), mean.tolist(), weights.tolist(), joined, strict=False,
    ):  # fmt: skip
        confidence = c if w > 0 else None
        turns.append(
            Turn(
                start=t_start,
                end=t_end,
                speaker=labels[speaker],
                text=text,
                confidence=confidence,
                low_confidence=confidence is not None and confidence < low_confidence,
                word_count=hi - lo,
                words=tuple(words[lo:hi]),
            )
        )
    return turns


def build_turns(
    words: Sequence[AttributedWord],
    *,
    max_pause_s: float = DEFAULT_MAX_PAUSE_S,
    low_confidence: float = DEFAULT_LOW_CONFIDENCE,
) -> list[Turn]:
    """The same grouping for words already attributed (in time order)."""
    labels = list(dict.fromkeys(item.speaker for item in words))
    index = {label: k for k, label in enumerate(labels)}
    assignment = Assignment(
        words=[item.word for item in words],
        start=np.fromiter((i.word.start for i in words), np.float64, len(words)),
        end=np.fromiter((i.word.end for i in words), np.float64, len(words)),
        speakers=labels,
        speaker_of=np.fromiter((index[i.speaker] for i in words), np.int64, len(words)),
        confidence=np.array(
            [np.nan if i.confidence is None else i.confidence for i in words], np.float64
        ),
        overlapped=np.fromiter((i.overlapped for i in words), bool, len(words)),
    )
    return turns_from_assignment(assignment, max_pause_s=max_pause_s, low_confidence=low_confidence)
