"""Sentence packing for Magpie, and transcript formats built from Parakeet's words."""

from __future__ import annotations

import pytest

from spark_gateway.transcript_formats import (
    join_words,
    segments_from_words,
    to_srt,
    to_vtt,
    verbose_transcription,
)
from spark_gateway.tts_text import sentences, speech_chunks, split_in_half


def test_chunks_pack_sentences_under_the_limit() -> None:
    text = "One. Two is here. " * 30 + "Supercalifragilistic" * 20 + " end."
    for limit in (40, 200):
        chunks = speech_chunks(text, limit)
        assert all(0 < len(c) <= limit for c in chunks)
        # Nothing lost, nothing added (only whitespace may move).
        assert "".join(chunks).replace(" ", "") == text.replace(" ", "")
    assert speech_chunks("Hello there. How are you?", 200) == ["Hello there. How are you?"]
    assert sentences("Hello there. How are you?", 200) == ["Hello there.", "How are you?"]
    assert speech_chunks("   ", 200) == []


def test_split_in_half_at_a_word_boundary() -> None:
    assert split_in_half("alpha beta gamma delta") == ("alpha beta", "gamma delta")
    assert split_in_half("single") is None


@pytest.mark.parametrize(
    ("tokens", "text"),
    [
        (["Hello", ",", "world", "!"], "Hello, world!"),
        (["It", "costs", "5", "%", "."], "It costs 5%."),
        (["(", "aside", ")", "done"], "(aside) done"),
    ],
)
def test_join_words(tokens: list[str], text: str) -> None:
    assert join_words(tokens) == text


WORDS = [
    {"word": "Hello", "start": 0.0, "end": 0.4},
    {"word": "there.", "start": 0.45, "end": 0.9},
    {"word": "After", "start": 2.5, "end": 2.8},
    {"word": "a", "start": 2.85, "end": 2.9},
    {"word": "pause", "start": 2.95, "end": 3.4},
]


def test_segments_break_at_sentence_ends_and_pauses() -> None:
    segments = segments_from_words(WORDS)
    assert [(s["start"], s["end"], s["text"]) for s in segments] == [
        (0.0, 0.9, "Hello there."),
        (2.5, 3.4, "After a pause"),
    ]
    assert [s["id"] for s in segments] == [0, 1]


def test_verbose_fills_in_what_the_upstream_lacks() -> None:
    only_text = verbose_transcription(
        {"text": " hi "}, duration=1.5, language=None, words_wanted=True
    )
    assert only_text["segments"][0]["start"] == 0.0
    assert only_text["segments"][0]["end"] == 1.5
    assert only_text["words"] == []
    assert only_text["language"] == "en"
    assert only_text["usage"] == {"type": "duration", "seconds": 2}
    with_words = verbose_transcription(
        {
            "text": "Hello there. After a pause",
            "words": [{"text": " Hello", "start": "0", "end": 0.4}, *WORDS[1:]],
        },
        duration=3.5,
        language="en",
        words_wanted=False,
    )
    assert len(with_words["segments"]) == 2
    assert "words" not in with_words  # not asked for
    silent = verbose_transcription({"text": ""}, duration=2.0, language="de", words_wanted=True)
    assert silent["segments"] == []
    assert silent["language"] == "de"


def test_subtitles() -> None:
    segments = segments_from_words(WORDS)
    assert to_srt(segments) == (
        "1\n00:00:00,000 --> 00:00:00,900\nHello there.\n\n"
        "2\n00:00:02,500 --> 00:00:03,400\nAfter a pause\n"
    )
    assert to_vtt(segments) == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:00.900\nHello there.\n\n"
        "00:00:02.500 --> 00:00:03.400\nAfter a pause\n"
    )
    assert to_srt([{"start": 3725.5, "end": 3726.0, "text": "x"}]).startswith(
        "1\n01:02:05,500 --> 01:02:06,000"
    )
