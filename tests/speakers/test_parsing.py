"""Upstream JSON parsing and its errors."""

from __future__ import annotations

import json

import pytest

from spark_gateway.speakers.parsing import (
    UpstreamFormatError,
    normalize_speaker,
    parse_diarization,
    parse_transcript,
)
from spark_gateway.speakers.records import SpeakerSegment, Word
from tests.paths import CONTRACTS

CONTRACT = json.loads((CONTRACTS / "diarize_chunk.json").read_text())


def test_contract_example_parses() -> None:
    example = dict(CONTRACT["example"])
    dim = CONTRACT["fingerprint_dim"]
    example["fingerprints"] = {k: [0.1] * dim for k in ("speaker_0", "speaker_1")}
    long_segment, short_segment = example["segments"]
    example["segments"] = [{**long_segment, "fingerprint": [0.2] * dim}, short_segment]
    result = parse_diarization(example)
    assert result.speakers == ["Speaker_0", "Speaker_1"]
    assert result.segments[0] == SpeakerSegment(0.32, 3.2, "Speaker_0", 0.91)
    voice = result.segments[0].voice
    assert voice is not None
    assert voice.shape == (dim,)
    assert result.segments[1].voice is None  # shorter than the contract's minimum: null
    assert result.segments[1].confidence is None
    assert result.fingerprints["Speaker_1"].shape == (192,)
    assert result.models["embedding"].endswith("titanet_large")


def test_segments_sorted_and_labels_normalised() -> None:
    body = {"segments": [{"start_s": 5, "end_s": 6, "speaker": "speaker_1"},
                         {"start_s": 1, "end_s": 2, "speaker": "SPEAKER 0"},
                         {"start_s": 3, "end_s": 3, "speaker": "speaker_0"}]}  # fmt: skip
    result = parse_diarization(body)
    assert [s.speaker for s in result.segments] == ["Speaker_0", "Speaker_1"]
    assert result.speakers == ["Speaker_0", "Speaker_1"]


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"segments": "nope"},
        {"segments": [{"start_s": "a", "end_s": 1, "speaker": "speaker_0"}]},
        {"segments": [{"start_s": 0, "end_s": float("nan"), "speaker": "speaker_0"}]},
        {"segments": [{"start_s": 0, "end_s": 1, "speaker": None}]},
        {"segments": [], "fingerprints": {"speaker_0": [1.0, 2.0], "speaker_1": [1.0]}},
        {"segments": [], "fingerprints": {"speaker_0": "x"}},
        {"segments": [{"start_s": 0, "end_s": 1, "speaker": "speaker_0", "fingerprint": "x"}]},
        {"segments": [{"start_s": 0, "end_s": 1, "speaker": "speaker_0", "fingerprint": []}]},
        {"segments": [{"start_s": 0, "end_s": 1, "speaker": "s", "fingerprint": [float("inf")]}]},
        {
            "segments": [{"start_s": 0, "end_s": 1, "speaker": "speaker_0", "fingerprint": [1.0]}],
            "fingerprints": {"speaker_0": [1.0, 2.0]},
        },
    ],
)
def test_bad_diarization_rejected(body: object) -> None:
    with pytest.raises(UpstreamFormatError):
        parse_diarization(body)


def test_null_fingerprint_and_clean_speech() -> None:
    body = {"segments": [], "fingerprints": {"speaker_0": None},
            "fingerprint_speech_s": {"speaker_0": 0.4}}  # fmt: skip
    result = parse_diarization(body)
    assert result.fingerprints == {"Speaker_0": None}
    assert result.clean_speech_s == {"Speaker_0": 0.4}


def test_transcript_words() -> None:
    body = {"text": "hi there", "language": "en", "duration": 2.0,
            "words": [{"word": " hi", "start": 0.1, "end": 0.4},
                      {"word": "there", "start": 0.5, "end": 0.4}]}  # fmt: skip
    result = parse_transcript(body)
    assert result.words == [Word(0.1, 0.4, " hi"), Word(0.5, 0.5, "there")]
    assert result.language == "en"
    assert result.duration_s == 2.0


def test_transcript_without_words_spreads_segment_tokens() -> None:
    body = {"text": "a b", "segments": [{"start": 1.0, "end": 2.0, "text": "a b"}]}
    assert parse_transcript(body).words == [Word(1.0, 1.5, "a"), Word(1.5, 2.0, "b")]


@pytest.mark.parametrize(
    "body",
    ["text", {"words": [{"word": 1, "start": 0, "end": 1}]}, {"words": ["x"]},
     {"segments": [{"start": 0}]}, {"words": [{"word": "a", "start": None, "end": 1}]}],
)  # fmt: skip
def test_bad_transcript_rejected(body: object) -> None:
    with pytest.raises(UpstreamFormatError):
        parse_transcript(body)


def test_normalize_speaker() -> None:
    assert normalize_speaker("speaker_3") == "Speaker_3"
    assert normalize_speaker(2) == "Speaker_2"
    assert normalize_speaker("Alice") == "Alice"
    with pytest.raises(UpstreamFormatError):
        normalize_speaker("")
