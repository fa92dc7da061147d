"""Read the upstream JSON (transcription and diarization) into typed records.

Anything malformed raises `UpstreamFormatError`, which the route turns into a 502: a broken
upstream answer is the upstream's fault, not the client's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .records import SpeakerSegment, Word

_SPEAKER_RE = re.compile(r"^(?:speaker)[_ ]?(\d+)$", re.IGNORECASE)


class UpstreamFormatError(ValueError):
    """The upstream answered 200 with a body we cannot use."""


@dataclass(frozen=True, slots=True)
class Transcript:
    """Words with times, plus what the ASR says about the audio."""

    words: list[Word]
    language: str | None
    duration_s: float | None
    text: str


@dataclass(frozen=True, slots=True)
class Diarization:
    """Segments with local speaker labels, and optional voice fingerprints."""

    segments: list[SpeakerSegment]
    speakers: list[str]
    duration_s: float | None
    fingerprints: dict[str, np.ndarray | None] = field(default_factory=dict)
    clean_speech_s: dict[str, float] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)


def normalize_speaker(label: object) -> str:
    """`speaker_0`, `Speaker 0` and `SPEAKER_0` all become `Speaker_0`."""
    if not isinstance(label, str | int) or isinstance(label, bool):
        raise UpstreamFormatError(f"speaker label {label!r} is not a string")
    text = str(label).strip()
    if isinstance(label, int):
        return f"Speaker_{label}"
    match = _SPEAKER_RE.match(text)
    if match:
        return f"Speaker_{int(match.group(1))}"
    if not text:
        raise UpstreamFormatError("empty speaker label")
    return text


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UpstreamFormatError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _optional_number(value: object, what: str) -> float | None:
    return None if value is None else _number(value, what)


def parse_transcript(body: object) -> Transcript:
    """Parse an OpenAI `verbose_json` transcription (words preferred, segments as fallback)."""
    if not isinstance(body, Mapping):
        raise UpstreamFormatError("transcription is not a JSON object")
    language = body.get("language")
    duration = _optional_number(body.get("duration"), "duration")
    text = body.get("text") or ""
    words_raw = body.get("words")
    words: list[Word] = []
    if isinstance(words_raw, list) and words_raw:
        for item in words_raw:
            if not isinstance(item, Mapping):
                raise UpstreamFormatError("word entry is not an object")
            token = item.get("word", item.get("text"))
            if not isinstance(token, str):
                raise UpstreamFormatError("word entry has no text")
            start = _number(item.get("start"), "word start")
            end = _number(item.get("end"), "word end")
            words.append(Word(start, max(start, end), token))
    else:
        words = _words_from_segments(body.get("segments"))
    return Transcript(
        words=words,
        language=language if isinstance(language, str) else None,
        duration_s=duration,
        text=text if isinstance(text, str) else "",
    )


def _words_from_segments(segments: object) -> list[Word]:
    """Spread each segment's tokens evenly over its span when the ASR gave no word times."""
    if segments is None:
        return []
    if not isinstance(segments, list):
        raise UpstreamFormatError("segments is not a list")
    words: list[Word] = []
    for seg in segments:
        if not isinstance(seg, Mapping) or not isinstance(seg.get("text"), str):
            raise UpstreamFormatError("segment entry has no text")
        tokens = seg["text"].split()
        start = _number(seg.get("start"), "segment start")
        end = max(start, _number(seg.get("end"), "segment end"))
        step = (end - start) / len(tokens) if tokens else 0.0
        words.extend(
            Word(start + i * step, start + (i + 1) * step, token) for i, token in enumerate(tokens)
        )
    return words


def parse_diarization(body: object) -> Diarization:
    """Parse a `/v1/audio/diarize` or `/v1/audio/diarize-chunk` answer."""
    if not isinstance(body, Mapping):
        raise UpstreamFormatError("diarization is not a JSON object")
    raw_segments = body.get("segments")
    if not isinstance(raw_segments, list):
        raise UpstreamFormatError("diarization has no segments list")
    segments: list[SpeakerSegment] = []
    for item in raw_segments:
        if not isinstance(item, Mapping):
            raise UpstreamFormatError("segment entry is not an object")
        start = _number(item.get("start_s", item.get("start")), "segment start")
        end = _number(item.get("end_s", item.get("end")), "segment end")
        if end <= start:
            continue  # zero-length segments carry no time to attribute
        confidence = _optional_number(item.get("confidence"), "confidence")
        if confidence is not None:
            confidence = min(max(confidence, 0.0), 1.0)
        speaker = normalize_speaker(item.get("speaker"))
        voice = _vector(item.get("fingerprint"), "segment fingerprint")
        segments.append(SpeakerSegment(start, end, speaker, confidence, voice))
    segments.sort(key=lambda s: (s.start, s.end))
    # `speakers_detected` is a count in the contract; older containers sent the label list.
    speakers_raw = body.get("speakers_detected")
    speakers = (
        [normalize_speaker(s) for s in speakers_raw] if isinstance(speakers_raw, list) else []
    )
    for seg in segments:
        if seg.speaker not in speakers:
            speakers.append(seg.speaker)
    models_raw = body.get("models")
    models = (
        {str(k): str(v) for k, v in models_raw.items() if v is not None}
        if isinstance(models_raw, Mapping)
        else {}
    )
    fingerprints = _parse_fingerprints(body.get("fingerprints"))
    dims = {v.shape[0] for v in fingerprints.values() if v is not None}
    dims.update(s.voice.shape[0] for s in segments if s.voice is not None)
    if len(dims) > 1:
        raise UpstreamFormatError("fingerprints differ in length")
    return Diarization(
        segments=segments,
        speakers=speakers,
        duration_s=_optional_number(body.get("duration"), "duration"),
        fingerprints=fingerprints,
        clean_speech_s=_parse_clean_speech(body.get("fingerprint_speech_s")),
        models=models,
    )


def _vector(raw: object, what: str) -> np.ndarray | None:
    """A fingerprint: null, or a non-empty list of finite numbers."""
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw:
        raise UpstreamFormatError(f"{what} is not a list of numbers")
    return np.asarray([_number(v, f"{what} value") for v in raw], dtype=np.float64)


def _parse_fingerprints(raw: object) -> dict[str, np.ndarray | None]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise UpstreamFormatError("fingerprints is not an object")
    return {
        normalize_speaker(label): _vector(vector, "fingerprint") for label, vector in raw.items()
    }


def _parse_clean_speech(raw: object) -> dict[str, float]:
    if not isinstance(raw, Mapping):
        return {}
    return {normalize_speaker(k): _number(v, "clean speech seconds") for k, v in raw.items()}


def transcript_to_json(words: list[Word]) -> list[dict[str, Any]]:
    """Words in the OpenAI verbose_json shape (used in tests and the evaluation)."""
    return [{"word": w.text, "start": w.start, "end": w.end} for w in words]
