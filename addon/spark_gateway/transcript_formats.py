"""OpenAI transcription response formats built from whatever Parakeet returned.

Parakeet servers differ: some give segments and words, some only words, some only text. Our
own speech container gives one segment for the whole clip plus word timings. So whenever word
timings exist, segments and subtitle cues are built from them here (breaking at pauses, sentence
ends and a length cap), whatever segments the upstream sent; without words the upstream's
segments are kept, and with text alone the whole clip is one segment.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

SEGMENT_PAUSE_S = 0.8  # a pause this long starts a new segment
SEGMENT_MAX_S = 30.0
# Subtitle cues are shorter: readable in one glance (two lines of 42 characters, at most 7 s).
CUE_PAUSE_S = 0.5
CUE_MAX_S = 7.0
CUE_MAX_CHARS = 84
_SENTENCE_END = (".", "?", "!", "\u2026")
_NO_SPACE_BEFORE = ",.;:!?)%'\u2019\u2026"


def _float(value: Any, default: float = 0.0) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default


def normalize_words(raw: Any) -> list[dict[str, Any]]:
    """`[{word, start, end}]` with stripped words and float times, sorted by start."""
    words: list[dict[str, Any]] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, Mapping):
            continue
        text = str(item.get("word", item.get("text", ""))).strip()
        if not text:
            continue
        start = _float(item.get("start"))
        end = max(start, _float(item.get("end"), start))
        words.append({"word": text, "start": round(start, 3), "end": round(end, 3)})
    words.sort(key=lambda w: (w["start"], w["end"]))
    return words


def _segment(index: int, start: float, end: float, text: str) -> dict[str, Any]:
    # Fields Whisper's verbose_json carries; Parakeet has no beam search, so fixed values.
    return {
        "id": index,
        "seek": 0,
        "start": round(start, 3),
        "end": round(end, 3),
        "text": text,
        "tokens": [],
        "temperature": 0.0,
        "avg_logprob": 0.0,
        "compression_ratio": 1.0,
        "no_speech_prob": 0.0,
    }


def join_words(words: Iterable[str]) -> str:
    """Words joined by single spaces, with no space before punctuation."""
    text = ""
    for word in words:
        if text and word[:1] not in _NO_SPACE_BEFORE and not text.endswith(("(", " ")):
            text += " "
        text += word
    return text


def segments_from_words(
    words: Sequence[Mapping[str, Any]],
    *,
    pause_s: float = SEGMENT_PAUSE_S,
    max_s: float = SEGMENT_MAX_S,
    max_chars: int | None = None,
    join: Callable[[Iterable[str]], str] = join_words,
) -> list[dict[str, Any]]:
    """Group words into segments at pauses, sentence ends, and a maximum length and size.

    A word longer than `max_chars` on its own still gets a segment of its own.
    """
    segments: list[dict[str, Any]] = []
    group: list[Mapping[str, Any]] = []

    def close() -> None:
        if group:
            text = join(str(w["word"]) for w in group)
            segments.append(_segment(len(segments), group[0]["start"], group[-1]["end"], text))
            group.clear()

    for word in words:
        if group and (
            word["start"] - group[-1]["end"] > pause_s
            or word["end"] - group[0]["start"] > max_s
            or (
                max_chars is not None
                and len(join(str(w["word"]) for w in (*group, word))) > max_chars
            )
        ):
            close()
        group.append(word)
        if str(word["word"]).endswith(_SENTENCE_END):
            close()
    close()
    return segments


def subtitle_cues(result: Mapping[str, Any], *, duration: float) -> list[dict[str, Any]]:
    """Cues that follow the words and the pauses between them, whatever segments came along."""
    words = normalize_words(result.get("words"))
    if words:
        return segments_from_words(
            words, pause_s=CUE_PAUSE_S, max_s=CUE_MAX_S, max_chars=CUE_MAX_CHARS
        )
    return _segments_without_words(result, duration=duration)


def _segments_without_words(result: Mapping[str, Any], *, duration: float) -> list[dict[str, Any]]:
    segments = normalize_segments(result.get("segments"))
    text = str(result.get("text", "")).strip()
    if not segments and text:
        segments = [_segment(0, 0.0, duration, text)]
    return segments


def normalize_segments(raw: Any) -> list[dict[str, Any]]:
    """Upstream segments in OpenAI's full shape (missing fields filled in)."""
    segments: list[dict[str, Any]] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, Mapping):
            continue
        text = str(item.get("text", "")).strip()
        start = _float(item.get("start"))
        segments.append(_segment(len(segments), start, max(start, _float(item.get("end"))), text))
    return segments


def verbose_transcription(
    result: Mapping[str, Any], *, duration: float, language: str | None, words_wanted: bool
) -> dict[str, Any]:
    """OpenAI's `verbose_json` body (TranscriptionVerbose)."""
    text = str(result.get("text", "")).strip()
    words = normalize_words(result.get("words"))
    if words:
        segments = segments_from_words(words)
    else:
        segments = _segments_without_words(result, duration=duration)
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": language or str(result.get("language") or "en"),
        "duration": round(duration, 3),
        "text": text,
        "segments": segments,
        "usage": usage(duration),
    }
    if words_wanted:
        body["words"] = words
    return body


def usage(duration: float) -> dict[str, Any]:
    """Duration-based usage, as OpenAI reports it for audio models."""
    return {"type": "duration", "seconds": math.ceil(duration)}


def _stamp(seconds: float, separator: str) -> str:
    millis = round(max(seconds, 0.0) * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def to_srt(segments: Sequence[Mapping[str, Any]]) -> str:
    """SubRip subtitles, one cue per segment."""
    cues = [
        f"{i}\n{_stamp(s['start'], ',')} --> {_stamp(s['end'], ',')}\n{s['text']}\n"
        for i, s in enumerate(segments, start=1)
    ]
    return "\n".join(cues)


def to_vtt(segments: Sequence[Mapping[str, Any]]) -> str:
    """WebVTT subtitles, one cue per segment."""
    cues = [
        f"{_stamp(s['start'], '.')} --> {_stamp(s['end'], '.')}\n{s['text']}\n" for s in segments
    ]
    return "WEBVTT\n\n" + "\n".join(cues)
