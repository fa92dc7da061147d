"""Output formats: contract JSON, SRT, WebVTT and labelled text."""

from __future__ import annotations

import json

from spark_gateway.speakers.formats import to_contract_json, to_srt, to_text, to_vtt
from spark_gateway.speakers.records import Turn
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
