"""Render speaker turns as the JSON contract, SRT, WebVTT or labelled plain text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .. import transcript_formats as subtitles
from .records import Turn
from .tokens import join_tokens

OutputFormat = Literal["json", "srt", "vtt", "text"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("json", "srt", "vtt", "text")
CONTENT_TYPES: Mapping[OutputFormat, str] = {
    "json": "application/json",
    "srt": "text/plain",  # what OpenAI answers for srt, and what players accept
    "vtt": "text/vtt",
    "text": "text/plain",
}


def speaker_label(turn: Turn) -> str:
    """The label shown in text formats; a trailing `?` marks a low-confidence turn."""
    return f"{turn.speaker}?" if turn.low_confidence else turn.speaker


def speakers_in_order(turns: Sequence[Turn]) -> list[str]:
    """Distinct speakers in order of first appearance."""
    return list(dict.fromkeys(turn.speaker for turn in turns))


def to_contract_json(
    turns: Sequence[Turn],
    *,
    duration_s: float,
    language: str | None,
    models: Mapping[str, str | None],
    speakers: Sequence[str] | None = None,
    identified: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The `transcribe-with-speakers` body (tests/contracts/transcribe_with_speakers.json).

    `identified` maps each enrolled name shown to its voiceprint id and match confidence.
    """
    names = list(speakers) if speakers is not None else speakers_in_order(turns)
    return {
        "duration": round(duration_s, 3),
        "language": language,
        "speakers_detected": len(names),
        "speakers": names,
        "segments": [
            {
                "start_ms": round(turn.start * 1000),
                "end_ms": round(turn.end * 1000),
                "speaker": turn.speaker,
                "text": turn.text,
                "confidence": turn.confidence,
                "low_confidence": turn.low_confidence,
            }
            for turn in turns
        ],
        "models": dict(models),
        "identified": {name: dict(match) for name, match in (identified or {}).items()},
    }


@dataclass(frozen=True, slots=True)
class Cue:
    """One subtitle cue: a piece of one turn, shown with its speaker's label."""

    start: float
    end: float
    label: str
    text: str


def subtitle_cues(turns: Sequence[Turn]) -> list[Cue]:
    """Each turn cut at its words as `/v1/audio/transcriptions` cuts its cues (pauses, sentence
    ends, `CUE_MAX_S`, `CUE_MAX_CHARS`), the label counting towards the characters.

    A turn without word times stays one cue.
    """
    cues: list[Cue] = []
    for turn in turns:
        label = speaker_label(turn)
        if not turn.words:
            cues.append(Cue(turn.start, turn.end, label, turn.text))
            continue
        pieces = subtitles.segments_from_words(
            [{"word": w.text.strip(), "start": w.start, "end": w.end} for w in turn.words],
            pause_s=subtitles.CUE_PAUSE_S,
            max_s=subtitles.CUE_MAX_S,
            max_chars=max(subtitles.CUE_MAX_CHARS - len(f"{label}: "), 1),
            join=join_tokens,
        )
        cues.extend(Cue(p["start"], p["end"], label, p["text"]) for p in pieces)
    return cues


def to_srt(turns: Sequence[Turn]) -> str:
    """SubRip cues numbered from 1, each led by its speaker."""
    cues = subtitle_cues(turns)
    return subtitles.to_srt(
        [{"start": c.start, "end": c.end, "text": f"{c.label}: {c.text}"} for c in cues]
    )


def to_vtt(turns: Sequence[Turn]) -> str:
    """WebVTT with the speaker as a voice span, so players can style speakers."""
    cues = subtitle_cues(turns)
    return subtitles.to_vtt(
        [{"start": c.start, "end": c.end, "text": f"<v {c.label}>{c.text}"} for c in cues]
    )


def to_text(turns: Sequence[Turn]) -> str:
    """`[mm:ss] Speaker_0: text` lines; hours appear once the recording passes one."""
    long_form = any(t.start >= 3600 for t in turns)
    lines = []
    for t in turns:
        total = int(t.start)
        hours, rest = divmod(total, 3600)
        minutes, secs = divmod(rest, 60)
        stamp = f"{minutes:02d}:{secs:02d}"
        if long_form:
            stamp = f"{hours:02d}:{stamp}"
        lines.append(f"[{stamp}] {speaker_label(t)}: {t.text}")
    return "\n".join(lines) + ("\n" if lines else "")
