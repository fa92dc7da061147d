"""Output formats: contract JSON, SRT, WebVTT and labelled text."""

from __future__ import annotations

import json

from spark_gateway.speakers.formats import (
    subtitle_cues,
    to_contract_json,
    to_srt,
    to_text,
    to_vtt,
)
from spark_gateway.speakers.records import Turn, Word
from spark_gateway.transcript_formats import CUE_MAX_CHARS, CUE_MAX_S
from tests.paths import CONTRACTS

CONTRACT = json.loads((CONTRACTS / "transcribe_with_speakers.json").read_text())

TURNS = [
    Turn(0.0, 4.16, "Speaker_0", "I'm recording right now.", 0.93, False, 4),
    Turn(4.4, 9.02, "Speaker_1", "You're on your computer, right?", 0.41, True, 5),
    Turn(3725.5, 3727.25, "Speaker_0", "Bye.", None, False, 1),
]


def test_json_matches_contract() -> None:
    body = to_contract_json(TURNS[:2], duration_s=12.48, language="en",
                            models={"transcription": "p", "diarization": "d"})  # fmt: skip
    for key in CONTRACT["required"]:
        assert key in body
    assert body["speakers_detected"] == 2
    assert body["speakers"] == ["Speaker_0", "Speaker_1"]
    for segment in body["segments"]:
        for key in CONTRACT["segment_required"]:
            assert key in segment
    assert body["segments"][0] == {
        "start_ms": 0, "end_ms": 4160, "speaker": "Speaker_0", "text": "I'm recording right now.",
        "confidence": 0.93, "low_confidence": False,
    }  # fmt: skip
    assert type(body["speakers_detected"]) is type(CONTRACT["example"]["speakers_detected"])


def test_srt() -> None:
    """Turns built without word times stay one cue each."""
    assert to_srt(TURNS) == (
        "1\n00:00:00,000 --> 00:00:04,160\nSpeaker_0: I'm recording right now.\n\n"
        "2\n00:00:04,400 --> 00:00:09,020\nSpeaker_1?: You're on your computer, right?\n\n"
        "3\n01:02:05,500 --> 01:02:07,250\nSpeaker_0: Bye.\n"
    )


def test_vtt() -> None:
    text = to_vtt(TURNS[:2])
    assert text.startswith("WEBVTT\n\n")
    assert "00:00:04.400 --> 00:00:09.020\n<v Speaker_1?>You're on your computer, right?\n" in text


def test_text_short_and_long() -> None:
    assert to_text(TURNS[:2]) == (
        "[00:00] Speaker_0: I'm recording right now.\n"
        "[00:04] Speaker_1?: You're on your computer, right?\n"
    )
    assert to_text(TURNS).splitlines()[2] == "[01:02:05] Speaker_0: Bye."
    assert to_text([]) == ""


def test_enrolled_names_in_every_text_format() -> None:
    """A person's name (spaces and accents as enrolled) takes the place of `Speaker_N`."""
    turns = [
        Turn(0.0, 2.0, "Zoë Martin", "Lights off, please.", 0.9, False, 3),
        Turn(2.5, 4.0, "Zoë Martin", "Thanks.", 0.4, True, 1),
        Turn(4.5, 6.0, "Speaker_1", "Sure.", 0.9, False, 1),
    ]
    assert "Zoë Martin: Lights off, please.\n" in to_srt(turns)
    assert "Zoë Martin?: Thanks.\n" in to_srt(turns)
    assert "<v Zoë Martin>Lights off, please.\n" in to_vtt(turns)
    assert to_text(turns).splitlines() == [
        "[00:00] Zoë Martin: Lights off, please.",
        "[00:02] Zoë Martin?: Thanks.",
        "[00:04] Speaker_1: Sure.",
    ]


def spoken(text: str, start: float, seconds_per_word: float) -> tuple[Word, ...]:
    """`text`'s words one after another, each lasting `seconds_per_word`."""
    return tuple(
        Word(start + k * seconds_per_word, start + (k + 1) * seconds_per_word, token)
        for k, token in enumerate(text.split())
    )


def test_long_turn_is_cut_into_labelled_cues_within_the_limits() -> None:
    """A 15 s turn of 200+ characters becomes cues of ≤ 7 s and ≤ 84 characters, label included."""
    text = " ".join(["we should check the heating schedule before the winter starts"] * 4)
    words = spoken(text, 10.0, 0.375)
    turn = Turn(10.0, words[-1].end, "Zoë Martin", text, 0.9, False, len(words), words)
    cues = subtitle_cues([turn])
    assert len(text) > 200
    assert turn.end - turn.start >= 15
    assert len(cues) >= 3
    for cue in cues:
        assert cue.label == "Zoë Martin"
        assert cue.end - cue.start <= CUE_MAX_S
        assert len(f"{cue.label}: {cue.text}") <= CUE_MAX_CHARS
    assert " ".join(cue.text for cue in cues) == text
    assert (cues[0].start, cues[-1].end) == (turn.start, turn.end)
    srt = to_srt([turn])
    assert srt.count(" --> ") == len(cues)
    assert all(f"Zoë Martin: {cue.text}\n" in srt for cue in cues)
    vtt = to_vtt([turn])
    assert all(f"<v Zoë Martin>{cue.text}\n" in vtt for cue in cues)


def test_cues_break_at_sentence_ends_and_keep_the_low_confidence_mark() -> None:
    words = spoken("Lights off. Thanks.", 0.0, 0.4)
    turn = Turn(0.0, 1.2, "Speaker_1", "Lights off. Thanks.", 0.4, True, 3, words)
    assert to_srt([turn]) == (
        "1\n00:00:00,000 --> 00:00:00,800\nSpeaker_1?: Lights off.\n\n"
        "2\n00:00:00,800 --> 00:00:01,200\nSpeaker_1?: Thanks.\n"
    )


def test_an_over_long_word_gets_a_cue_of_its_own() -> None:
    """Nothing is dropped: a word longer than a cue's characters is one cue by itself."""
    giant = "https://example.org/" + "a" * 120
    words = spoken(f"see {giant} now", 0.0, 1.0)
    turn = Turn(0.0, 3.0, "Speaker_0", f"see {giant} now", 0.9, False, 3, words)
    assert [cue.text for cue in subtitle_cues([turn])] == ["see", giant, "now"]


def test_split_tokens_are_joined_as_in_the_turn() -> None:
    """Cue text is joined like the turn's text (no space before punctuation or contractions)."""
    words = (Word(0.0, 0.3, "I"), Word(0.3, 0.6, " do"), Word(0.6, 0.8, "n't"),
             Word(0.8, 1.0, " know"), Word(1.0, 1.1, ","), Word(1.1, 1.4, "maybe"))  # fmt: skip
    turn = Turn(0.0, 1.4, "Speaker_0", "I don't know, maybe", 0.9, False, 6, words)
    assert [cue.text for cue in subtitle_cues([turn])] == [turn.text]
