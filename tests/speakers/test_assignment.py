"""Word → speaker assignment by largest overlap, with the nearest-edge fallback."""

from __future__ import annotations

from spark_gateway.speakers.assignment import assign_speakers
from spark_gateway.speakers.records import SpeakerSegment, Word


def seg(start: float, end: float, speaker: str, confidence: float | None = 0.9) -> SpeakerSegment:
    return SpeakerSegment(start, end, speaker, confidence)


def test_largest_overlap_wins() -> None:
    segments = [seg(0.0, 1.2, "A"), seg(1.0, 3.0, "B")]
    # 0.9..1.5 overlaps A by 0.3 and B by 0.5
    result = assign_speakers([Word(0.9, 1.5, "x")], segments)
    assert result[0].speaker == "B"
    assert result[0].overlapped


def test_overlap_sums_over_several_segments_of_one_speaker() -> None:
    segments = [seg(0.0, 0.3, "A"), seg(0.3, 0.6, "B"), seg(0.6, 0.9, "A")]
    # A: 0.2 + 0.2 = 0.4, B: 0.3 → A even though B is the single biggest piece
    assert assign_speakers([Word(0.1, 0.8, "x")], segments)[0].speaker == "A"


def test_segments_given_unsorted_and_grouped_by_speaker() -> None:
    segments = [seg(5.0, 6.0, "A"), seg(0.0, 1.0, "A"), seg(3.0, 4.0, "B"), seg(1.0, 2.0, "B")]
    words = [Word(5.2, 5.5, "e"), Word(0.2, 0.5, "a"), Word(1.2, 1.5, "b"), Word(3.2, 3.5, "d")]
    result = assign_speakers(words, segments)
    assert [r.word.text for r in result] == ["a", "b", "d", "e"]
    assert [r.speaker for r in result] == ["A", "B", "B", "A"]


def test_fallback_nearest_edge_not_midpoint() -> None:
    # A long segment whose midpoint is far away, and a short one whose edge is close.
    segments = [seg(0.0, 10.0, "A"), seg(12.0, 12.5, "B")]
    # Word at 10.9..11.5: edge distance A=0.9, B=0.5 → B. Midpoint rule would also say B here,
    # so move it: word at 10.3..10.5 → A edge 0.3, B edge 1.5 → A.
    assert assign_speakers([Word(10.3, 10.5, "w")], segments)[0].speaker == "A"
    result = assign_speakers([Word(11.6, 11.8, "w")], segments)[0]
    # midpoints: A=5.0 (6.7 away), B=12.25 (0.55 away); edges: A=1.6, B=0.2 → B
    assert result.speaker == "B"
    assert not result.overlapped


def test_fallback_uses_latest_ending_segment_before_word() -> None:
    # A long earlier segment ends after a short later-starting one: A's edge is nearer.
    segments = [seg(0.0, 9.0, "A"), seg(2.0, 3.0, "B"), seg(20.0, 21.0, "C")]
    assert assign_speakers([Word(9.5, 9.8, "w")], segments)[0].speaker == "A"


def test_long_segment_reaches_late_word() -> None:
    # Backward walk must not stop at a short segment when an earlier long one overlaps.
    segments = [seg(0.0, 30.0, "A"), seg(1.0, 2.0, "B"), seg(3.0, 4.0, "B")]
    assert assign_speakers([Word(20.0, 20.5, "w")], segments)[0].speaker == "A"


def test_zero_length_word_inside_segment() -> None:
    segments = [seg(0.0, 1.0, "A"), seg(1.0, 2.0, "B")]
    assert assign_speakers([Word(1.5, 1.5, "w")], segments)[0].speaker == "B"


def test_confidence_is_overlap_weighted() -> None:
    segments = [seg(0.0, 1.0, "A", 0.8), seg(1.0, 2.0, "A", 0.4)]
    result = assign_speakers([Word(0.5, 2.0, "w")], segments)[0]
    # 0.5 s at 0.8 and 1.0 s at 0.4
    assert abs(result.confidence - (0.5 * 0.8 + 1.0 * 0.4) / 1.5) < 1e-9


def test_confidence_none_when_diarizer_gave_none() -> None:
    result = assign_speakers([Word(0.1, 0.2, "w")], [seg(0.0, 1.0, "A", None)])[0]
    assert result.confidence is None


def test_no_segments_uses_default_speaker() -> None:
    result = assign_speakers([Word(0.0, 0.5, "a")], [], default_speaker="Speaker_0")
    assert result[0].speaker == "Speaker_0"
    assert result[0].confidence is None
