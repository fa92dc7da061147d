"""Silence-based chunk planning and overlap dedupe."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from spark_gateway.speakers.chunking import Chunk, halve, plan_chunks, slice_samples
from spark_gateway.speakers.dedupe import owned_segments, owned_words, shift_segments, shift_words
from spark_gateway.speakers.records import SpeakerSegment, Word

RATE = 16_000


def speech_with_pauses(total_s: float, pauses: list[tuple[float, float]]) -> np.ndarray:
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(int(total_s * RATE)) * 3000).astype(np.int16)
    for start, end in pauses:
        audio[int(start * RATE) : int(end * RATE)] //= 200
    return audio


def test_short_audio_is_one_chunk() -> None:
    chunks = plan_chunks(np.zeros(RATE * 10, np.int16), RATE, chunk_s=60)
    assert chunks == [Chunk(0, 0.0, 10.0, 0.0, 10.0)]


def test_cuts_land_in_pauses_and_cover_everything() -> None:
    pauses = [(50.0, 51.0), (95.0, 96.0), (150.0, 151.0)]
    audio = speech_with_pauses(200.0, pauses)
    chunks = plan_chunks(audio, RATE, chunk_s=60, overlap_s=1.0, search_s=20)
    assert chunks[0].own_start_s == 0.0
    assert chunks[-1].own_end_s == pytest.approx(200.0)
    for prev, nxt in pairwise(chunks):
        assert prev.own_end_s == nxt.own_start_s
        assert any(start <= prev.own_end_s <= end for start, end in pauses), prev.own_end_s
        assert nxt.start_s == pytest.approx(nxt.own_start_s - 1.0)
        assert prev.end_s == pytest.approx(prev.own_end_s + 1.0)
    for chunk in chunks:
        assert chunk.own_end_s - chunk.own_start_s <= 60.0 + 1e-6


def test_no_pause_still_bounded() -> None:
    audio = speech_with_pauses(130.0, [])
    chunks = plan_chunks(audio, RATE, chunk_s=60, overlap_s=0.5)
    assert all(c.own_end_s - c.own_start_s <= 60.0 + 1e-6 for c in chunks)
    assert chunks[-1].own_end_s == pytest.approx(130.0)


def test_slice_matches_chunk_span() -> None:
    audio = np.arange(RATE * 3, dtype=np.int16)
    piece = slice_samples(audio, RATE, Chunk(0, 1.0, 2.0, 1.0, 2.0))
    assert len(piece) == RATE
    assert piece[0] == RATE


def test_bad_parameters_rejected() -> None:
    with pytest.raises(ValueError):
        plan_chunks(np.zeros(10, np.int16), RATE, chunk_s=0)


def test_overlap_words_kept_once() -> None:
    first = Chunk(0, 0.0, 61.0, 0.0, 60.0)
    second = Chunk(1, 59.0, 100.0, 60.0, 100.0)
    # Both chunks heard the words around the cut at 60 s.
    heard_first = [Word(58.5, 59.0, "before"), Word(59.2, 59.7, "edge"), Word(60.3, 60.8, "after")]
    heard_second = shift_words([Word(0.2, 0.7, "edge"), Word(1.3, 1.8, "after"),
                                Word(40.5, 41.0, "tail")], second.start_s)  # fmt: skip
    kept = owned_words(heard_first, first, is_last=False) + owned_words(
        heard_second, second, is_last=True
    )
    assert [w.text for w in kept] == ["before", "edge", "after", "tail"]


def test_segments_clipped_to_owned_span() -> None:
    chunk = Chunk(1, 59.0, 100.0, 60.0, 100.0)
    segs = [SpeakerSegment(59.0, 61.0, "A", 0.8), SpeakerSegment(59.0, 59.8, "B", 0.7)]
    assert owned_segments(segs, chunk) == [SpeakerSegment(60.0, 61.0, "A", 0.8)]
    # The segment's own print stays with it through the shift and the clipping.
    voice = np.ones(4)
    shifted = shift_segments([SpeakerSegment(0.0, 2.0, "A", 0.8, voice)], 59.0)
    assert owned_segments(shifted, chunk)[0].voice is voice


def test_no_tiny_tail_chunk() -> None:
    audio = speech_with_pauses(125.0, [])
    chunks = plan_chunks(audio, RATE, chunk_s=60, overlap_s=0.5, search_s=10)
    lengths = [c.own_end_s - c.own_start_s for c in chunks]
    assert len(chunks) == 3
    assert min(lengths) > 30.0


def test_halve_cuts_in_the_middle_pause_of_the_owned_span() -> None:
    # A chunk of a longer recording: owns 100-200 s, was sent 99-201 s. The pause at 142 s is
    # inside the middle fifth (140-160 s); the one at 125 s is not and must not be chosen.
    audio = speech_with_pauses(300.0, [(125.0, 126.0), (142.0, 143.0)])
    first, second = halve(audio, RATE, Chunk(3, 99.0, 201.0, 100.0, 200.0), overlap_s=1.0)
    assert 142.0 <= first.own_end_s <= 143.0
    assert second.own_start_s == first.own_end_s
    assert (first.own_start_s, second.own_end_s) == (100.0, 200.0)
    assert first.start_s == 99.0
    assert first.end_s == pytest.approx(first.own_end_s + 1.0)
    assert second.start_s == pytest.approx(second.own_start_s - 1.0)
    assert second.end_s == 201.0
    assert first.index == second.index == 3


def test_halve_without_a_pause_stays_near_the_middle_and_inside_the_audio() -> None:
    audio = speech_with_pauses(60.0, [])
    first, second = halve(audio, RATE, Chunk(0, 0.0, 60.0, 0.0, 60.0), overlap_s=2.0)
    assert 24.0 <= first.own_end_s <= 36.0
    assert first.start_s == 0.0
    assert second.end_s == 60.0
