"""Splitting reply text into pieces Magpie accepts, in order, sentence by sentence."""

from __future__ import annotations

from custom_components.spark_control.sparklib.voice.magpie import MagpieVoice, voice_language
from custom_components.spark_control.sparklib.voice.text_split import (
    MAGPIE_MAX_CHARS,
    MAX_PIECE_CHARS,
    SpeechTextSplitter,
    split_long_sentence,
    split_text,
)


def test_sentences_complete_as_soon_as_the_next_one_starts() -> None:
    splitter = SpeechTextSplitter()
    assert splitter.add("The lights are") == []
    assert splitter.add(" on. The door") == ["The lights are on."]
    assert splitter.add(" is locked! What else") == ["The door is locked!"]
    assert splitter.finish() == ["What else"]


def test_whole_text_keeps_order_and_words() -> None:
    text = "First sentence here. Second one follows. Third? Fourth! And a fifth."
    pieces = split_text(text)
    assert pieces == [
        "First sentence here.",
        "Second one follows.",
        "Third?",
        "Fourth!",
        "And a fifth.",
    ]


def test_long_sentence_is_cut_at_clauses_then_words_within_limits() -> None:
    clause = "the kitchen light is on, " * 40
    sentence = clause + "and that is all."
    pieces = split_long_sentence(sentence)
    assert MAX_PIECE_CHARS <= MAGPIE_MAX_CHARS
    assert all(0 < len(piece) <= MAX_PIECE_CHARS for piece in pieces)
    assert " ".join(pieces).split() == sentence.split()
    # Cuts fall after commas where possible.
    assert all(piece.endswith((",", ".")) for piece in pieces)


def test_word_longer_than_limit_is_cut_hard() -> None:
    url = "x" * 70
    pieces = split_long_sentence(f"See {url} now.", limit=30)
    assert all(len(piece) <= 30 for piece in pieces)
    assert "".join(pieces).replace(" ", "") == f"See{url}now."


def test_empty_and_whitespace_text() -> None:
    assert split_text("") == []
    assert split_text("   \n ") == []


def test_voice_language_from_name() -> None:
    assert voice_language("Magpie-Multilingual.EN-US.Mia") == "en-US"
    assert voice_language("Magpie-Multilingual.ES-US.Diego") == "es-US"
    assert voice_language("Magpie-Multilingual.fr-fr.Pascal") == "fr-FR"
    assert voice_language("CustomVoice") is None
    voice = MagpieVoice("Magpie-Multilingual.DE-DE.Leo", "de-DE")
    assert voice.speaker == "Leo"
    assert voice.description == "Leo (German, de-DE)"
