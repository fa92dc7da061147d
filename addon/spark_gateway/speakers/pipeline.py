"""Speaker-attributed transcription: the short path and the long-audio path.

Short recordings: transcription and diarization of the whole file run in parallel, then
words are merged with segments. Long recordings: cut at silences into overlapping chunks;
each chunk is transcribed and diarized (with fingerprints) in parallel, at most
`chunk_concurrency` chunks at a time; speakers are linked across chunks by fingerprint,
times shifted, overlap duplicates removed, and everything merged as for a short file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..audio_codec import pcm_to_wav
from .assignment import assign
from .chunking import (
    DEFAULT_CHUNK_S,
    DEFAULT_OVERLAP_S,
    Chunk,
    SampleSource,
    plan_chunks,
    slice_samples,
)
from .dedupe import owned_segments, owned_words, shift_segments, shift_words
from .linking import (
    DEFAULT_LINK_THRESHOLD,
    DEFAULT_MIN_RELIABLE_SPEECH_S,
    LocalSpeaker,
    link_speakers,
)
from .parsing import Diarization, Transcript, parse_diarization, parse_transcript
from .records import SpeakerSegment, Turn, Word
from .turns import DEFAULT_LOW_CONFIDENCE, DEFAULT_MAX_PAUSE_S, turns_from_assignment

SAMPLE_RATE = 16_000


class SpeechUpstream(Protocol):
    """What the pipeline needs from the Parakeet container (the gateway's UpstreamClient)."""

    async def transcribe(
        self,
        wav: bytes,
        *,
        language: str | None = None,
        response_format: str = "json",
        granularities: Iterable[str] = (),
        model: str | None = None,
    ) -> Any: ...

    async def diarize(self, wav: bytes) -> dict[str, Any]: ...

    async def diarize_chunk(self, wav: bytes) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class SpeakerOptions:
    """Tunables of the speaker pipeline (the gateway fills them from its config)."""

    long_audio_threshold_s: float = 600.0
    chunk_s: float = DEFAULT_CHUNK_S
    overlap_s: float = DEFAULT_OVERLAP_S
    chunk_concurrency: int = 2
    link_threshold: float = DEFAULT_LINK_THRESHOLD
    min_reliable_speech_s: float = DEFAULT_MIN_RELIABLE_SPEECH_S
    max_pause_s: float = DEFAULT_MAX_PAUSE_S
    low_confidence: float = DEFAULT_LOW_CONFIDENCE


@dataclass(frozen=True, slots=True)
class SpeakerTranscript:
    """The merged result, ready for `formats`."""

    turns: list[Turn]
    speakers: list[str]
    duration_s: float
    language: str | None
    models: dict[str, str | None]
    chunks: int = 1
    words: list[Word] = field(default_factory=list)
    segments: list[SpeakerSegment] = field(default_factory=list)


async def transcribe_with_speakers(
    upstream: SpeechUpstream,
    samples: SampleSource,
    *,
    language: str | None = None,
    options: SpeakerOptions | None = None,
    stt_model: str | None = None,
) -> SpeakerTranscript:
    """Run the short or the long path depending on the recording's length (16 kHz samples)."""
    options = options or SpeakerOptions()
    duration = len(samples) / SAMPLE_RATE
    if duration > options.long_audio_threshold_s:
        return await _long_path(upstream, samples, language, options, stt_model)
    wav = pcm_to_wav(samples[:], SAMPLE_RATE)  # short: at most long_audio_threshold_s
    transcript, diarization = await _transcribe_and_diarize(
        upstream, wav, language, stt_model, chunked=False
    )
    return _merge(
        transcript.words,
        diarization.segments,
        duration_s=duration,
        language=transcript.language or language,
        models=_models(stt_model, diarization),
        options=options,
        speakers_hint=diarization.speakers,
    )


async def _transcribe_and_diarize(
    upstream: SpeechUpstream, wav: bytes, language: str | None, stt_model: str | None, *,
    chunked: bool,
) -> tuple[Transcript, Diarization]:  # fmt: skip
    transcription = upstream.transcribe(
        wav,
        language=language,
        response_format="verbose_json",
        granularities=("word", "segment"),
        model=stt_model,
    )
    diarize = upstream.diarize_chunk(wav) if chunked else upstream.diarize(wav)
    raw_transcript, raw_diarization = await asyncio.gather(transcription, diarize)
    return parse_transcript(raw_transcript), parse_diarization(raw_diarization)


def _models(stt_model: str | None, diarization: Diarization) -> dict[str, str | None]:
    return {
        "transcription": stt_model,
        "diarization": diarization.models.get("diarization"),
        **({"embedding": diarization.models["embedding"]} if "embedding" in diarization.models
           else {}),
    }  # fmt: skip


def _merge(
    words: list[Word],
    segments: list[SpeakerSegment],
    *,
    duration_s: float,
    language: str | None,
    models: dict[str, str | None],
    options: SpeakerOptions,
    speakers_hint: list[str] | None = None,
    chunks: int = 1,
) -> SpeakerTranscript:
    turns = turns_from_assignment(
        assign(words, segments),
        max_pause_s=options.max_pause_s,
        low_confidence=options.low_confidence,
    )
    speakers = list(dict.fromkeys(t.speaker for t in turns))
    # Speakers the diarizer heard but no word was given to still count as detected.
    for name in speakers_hint or []:
        if name not in speakers and any(s.speaker == name for s in segments):
            speakers.append(name)
    return SpeakerTranscript(
        turns=turns,
        speakers=speakers,
        duration_s=duration_s,
        language=language,
        models=models,
        chunks=chunks,
        words=words,
        segments=segments,
    )


async def _long_path(
    upstream: SpeechUpstream,
    samples: SampleSource,
    language: str | None,
    options: SpeakerOptions,
    stt_model: str | None,
) -> SpeakerTranscript:
    chunks = plan_chunks(samples, SAMPLE_RATE, chunk_s=options.chunk_s, overlap_s=options.overlap_s)
    gate = asyncio.Semaphore(max(options.chunk_concurrency, 1))

    async def run(chunk: Chunk) -> tuple[Transcript, Diarization]:
        async with gate:
            # Encode inside the gate so at most `chunk_concurrency` chunk WAVs exist at once.
            wav = pcm_to_wav(slice_samples(samples, SAMPLE_RATE, chunk), SAMPLE_RATE)
            return await _transcribe_and_diarize(upstream, wav, language, stt_model, chunked=True)

    # A TaskGroup cancels the other chunks as soon as one fails (a wedge, a timeout).
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(run(chunk)) for chunk in chunks]
    except* Exception as failures:
        raise failures.exceptions[0] from None
    results = [task.result() for task in tasks]
    return _link_and_merge(chunks, results, options, language, stt_model, len(samples))


def _link_and_merge(
    chunks: list[Chunk],
    results: list[tuple[Transcript, Diarization]],
    options: SpeakerOptions,
    language: str | None,
    stt_model: str | None,
    n_samples: int,
) -> SpeakerTranscript:
    local: list[LocalSpeaker] = []
    words: list[Word] = []
    per_chunk_segments: list[list[SpeakerSegment]] = []
    for chunk, (transcript, diarization) in zip(chunks, results, strict=True):
        shifted = shift_segments(diarization.segments, chunk.start_s)
        kept = owned_segments(shifted, chunk)
        per_chunk_segments.append(kept)
        is_last = chunk.index == len(chunks) - 1
        words.extend(owned_words(shift_words(transcript.words, chunk.start_s), chunk,
                                 is_last=is_last))  # fmt: skip
        local.extend(_local_speakers(chunk, diarization, kept))
    mapping = link_speakers(
        local,
        threshold=options.link_threshold,
        min_reliable_speech_s=options.min_reliable_speech_s,
    )
    segments = [
        SpeakerSegment(s.start, s.end, mapping[(chunk.index, s.speaker)], s.confidence)
        for chunk, kept in zip(chunks, per_chunk_segments, strict=True)
        for s in kept
        if (chunk.index, s.speaker) in mapping  # spurious slots are dropped by the linker
    ]
    segments.sort(key=lambda s: (s.start, s.end))
    first_language = next((t.language for t, _ in results if t.language), None)
    return _merge(
        words,
        segments,
        duration_s=n_samples / SAMPLE_RATE,
        language=first_language or language,
        models=_models(stt_model, results[0][1]),
        options=options,
        chunks=len(chunks),
    )


def _local_speakers(
    chunk: Chunk, diarization: Diarization, kept: list[SpeakerSegment]
) -> list[LocalSpeaker]:
    """One entry per local speaker that still has speech in the chunk's owned span."""
    first: dict[str, float] = {}
    for seg in kept:
        first.setdefault(seg.speaker, seg.start)
    return [
        LocalSpeaker(
            chunk=chunk.index,
            label=label,
            fingerprint=diarization.fingerprints.get(label),
            clean_speech_s=diarization.clean_speech_s.get(
                label, _speech_seconds(diarization.segments, label)
            ),
            first_start_s=start,
        )
        for label, start in first.items()
    ]


def _speech_seconds(segments: list[SpeakerSegment], label: str) -> float:
    """Fallback when the container does not report clean speech: the speaker's total time."""
    return sum(s.end - s.start for s in segments if s.speaker == label)
