"""Turns: breaks on speaker change or long pause; confidence and low-confidence marking."""

from __future__ import annotations

from spark_gateway.speakers.records import AttributedWord, Word
from spark_gateway.speakers.turns import build_turns


def aw(start: float, end: float, text: str, speaker: str, conf: float | None = 0.9,
       overlapped: bool = True) -> AttributedWord:  # fmt: skip
    return AttributedWord(Word(start, end, text), speaker, conf, overlapped)


def test_break_on_speaker_change() -> None:
    words = [aw(0, 0.5, "hi", "A"), aw(0.6, 1.0, "there", "A"), aw(1.1, 1.4, "yo", "B")]
    turns = build_turns(words)
    assert [(t.speaker, t.text) for t in turns] == [("A", "hi there"), ("B", "yo")]
    assert turns[0].start == 0
    assert turns[0].end == 1.0
    assert turns[0].word_count == 2


def test_break_on_pause_over_limit_only() -> None:
    words = [aw(0, 0.5, "one", "A"), aw(2.0, 2.5, "two", "A"), aw(4.1, 4.5, "three", "A")]
    turns = build_turns(words, max_pause_s=1.5)
    # 0.5→2.0 is exactly 1.5 s (no break), 2.5→4.1 is 1.6 s (break)
    assert [t.text for t in turns] == ["one two", "three"]


def test_punctuation_joined_tight() -> None:
    words = [aw(0, 0.2, " Hello", "A"), aw(0.2, 0.3, ",", "A"), aw(0.3, 0.6, "world ", "A"),
             aw(0.6, 0.7, ".", "A")]  # fmt: skip
    assert build_turns(words)[0].text == "Hello, world."


def test_confidence_weighted_and_low_marked() -> None:
    words = [aw(0, 1.0, "a", "A", 0.9), aw(1.0, 3.0, "b", "A", 0.3)]
    turn = build_turns(words, low_confidence=0.6)[0]
    assert abs(turn.confidence - (0.9 + 2 * 0.3) / 3) < 1e-3
    assert turn.low_confidence


def test_fallback_words_count_at_half_confidence() -> None:
    turn = build_turns([aw(0, 1.0, "a", "A", 0.9, overlapped=False)])[0]
    assert turn.confidence == 0.45
    assert turn.low_confidence


def test_no_confidence_means_none_and_not_low() -> None:
    turn = build_turns([aw(0, 1.0, "a", "A", None)])[0]
    assert turn.confidence is None
    assert not turn.low_confidence


def test_empty_input() -> None:
    assert build_turns([]) == []
