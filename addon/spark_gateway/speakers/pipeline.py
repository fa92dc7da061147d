"""Speaker-attributed transcription of a recording of any length.

Recordings up to `long_audio_threshold_s` are one chunk; longer ones are cut at silences
into overlapping chunks. Each chunk is transcribed and diarized (with voice fingerprints) in
parallel, at most `chunk_concurrency` chunks at a time. Any chunk whose diarization may hold
more people than one call can show (a slot the diarizer was unsure of throughout: Sortformer
has four) is diarized again in halves, recursively down to `min_piece_s`; a slot still unsure
then is diarized again on its own speech and split into the voices found there
(`slot_split`). Local speakers are linked across chunks by fingerprint, given enrolled names
when their voice matches, times shifted, overlap duplicates removed, and words merged with
segments into turns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from ..audio_codec import pcm_to_wav
from .assignment import assign
from .chunking import (
    DEFAULT_CHUNK_S,
    DEFAULT_OVERLAP_S,
    Chunk,
    SampleSource,
    halve,
    plan_chunks,
    slice_samples,
)
from .dedupe import owned_segments, owned_words, shift_segments, shift_words
from .linking import (
    DEFAULT_LINK_THRESHOLD,
    DEFAULT_MIN_RELIABLE_SPEECH_S,
    DEFAULT_REJOIN_THRESHOLD,
    Linking,
    LocalSpeaker,
    link_local_speakers,
)
from .parsing import Diarization, Transcript, parse_diarization, parse_transcript
from .records import SpeakerSegment, Turn, Word
from .slot_split import SubDiarize, split_slots
from .turns import DEFAULT_LOW_CONFIDENCE, DEFAULT_MAX_PAUSE_S, turns_from_assignment
from .voiceprints import (
    DEFAULT_CONFIRM_MARGIN,
    DEFAULT_NAME_THRESHOLD,
    DEFAULT_SEGMENT_NAME_MARGIN,
    DEFAULT_SEGMENT_NAME_MIN_S,
    NameMatch,
    Voiceprint,
    name_local_speakers,
    nearest_name,
)

SAMPLE_RATE = 16_000
SPEAKER_SLOTS = 4  # Sortformer's outputs per diarization call
MIN_PIECE_S = 30.0  # shorter pieces give fingerprints too weak to link
MIN_SLOT_S = 3.0  # a slot with less speech says too little about who is in it
# Mean confidence under which a slot probably holds two people (chosen on the tuning voices).
DEFAULT_UNSURE_BELOW = 0.76
# Two voices found in one slot's speech count as two people only this far apart (cosine; one
# voice over-split by the diarizer gives closer prints): GE2E's tuning value (0.20) scaled to
# CAM++'s wider distances, the value the CAM++ evaluation ran with; GE2E's tests keep 0.20.
DEFAULT_SPLIT_DISTANCE = 0.55

Linker = Callable[[Sequence[LocalSpeaker]], Linking]
Diarize = Callable[[list[Chunk]], Awaitable[list[Diarization]]]


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

    async def diarize_chunk(self, wav: bytes) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class SpeakerOptions:
    """Tunables of the speaker pipeline (the gateway fills them from its config)."""

    long_audio_threshold_s: float = DEFAULT_CHUNK_S
    chunk_s: float = DEFAULT_CHUNK_S
    overlap_s: float = DEFAULT_OVERLAP_S
    chunk_concurrency: int = 2
    min_piece_s: float = MIN_PIECE_S
    unsure_below: float = DEFAULT_UNSURE_BELOW
    split_distance: float = DEFAULT_SPLIT_DISTANCE
    # A slot whose mean confidence is below this is diarized again on its own speech (None:
    # `unsure_below`, the halving's sign).
    split_below: float | None = None
    link_threshold: float = DEFAULT_LINK_THRESHOLD
    min_reliable_speech_s: float = DEFAULT_MIN_RELIABLE_SPEECH_S
    rejoin_threshold: float = DEFAULT_REJOIN_THRESHOLD
    name_threshold: float = DEFAULT_NAME_THRESHOLD
    confirm_margin: float = DEFAULT_CONFIRM_MARGIN
    segment_name_margin: float = DEFAULT_SEGMENT_NAME_MARGIN
    segment_name_min_s: float = DEFAULT_SEGMENT_NAME_MIN_S
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
    names: dict[str, NameMatch] = field(default_factory=dict)  # label shown → enrolled match


async def transcribe_with_speakers(
    upstream: SpeechUpstream,
    samples: SampleSource,
    *,
    language: str | None = None,
    options: SpeakerOptions | None = None,
    stt_model: str | None = None,
    voiceprints: Sequence[Voiceprint] = (),
    linker: Linker | None = None,
) -> SpeakerTranscript:
    """Who said what in 16 kHz samples; `voiceprints` are the people who may be named.

    `linker` replaces the fingerprint linking (the evaluation passes an oracle).
    """
    options = options or SpeakerOptions()
    duration = len(samples) / SAMPLE_RATE
    chunks = first_plan(samples, options)
    results = await _run_chunks(upstream, samples, chunks, options, language, stt_model,
                                transcribe=True)  # fmt: skip
    transcripts = [t for t, _ in results]
    diarizations = [d for _, d in results]
    words = _owned_words(chunks, transcripts)

    async def diarize(pieces: list[Chunk]) -> list[Diarization]:
        results = await _run_chunks(upstream, samples, pieces, options, language, stt_model,
                                    transcribe=False)  # fmt: skip
        return [d for _, d in results]

    # The words of the first pass are kept; only the speakers are looked at again.
    chunks, diarizations = await diarize_finer(samples, chunks, diarizations, diarize, options)
    diarizations = await diarize_slots(samples, chunks, diarizations,
                                       _clip_diarizer(upstream, options), options)  # fmt: skip
    first_language = next((t.language for t in transcripts if t and t.language), None)
    return link_and_merge(
        chunks,
        diarizations,
        words,
        options=options,
        language=first_language or language,
        models=_models(stt_model, diarizations[0]),
        duration_s=duration,
        voiceprints=voiceprints,
        linker=linker,
    )


def first_plan(samples: SampleSource, options: SpeakerOptions) -> list[Chunk]:
    """One chunk up to `long_audio_threshold_s`, else chunks cut at silences."""
    duration = len(samples) / SAMPLE_RATE
    if duration > options.long_audio_threshold_s:
        return plan_chunks(samples, SAMPLE_RATE, chunk_s=options.chunk_s,
                           overlap_s=options.overlap_s)  # fmt: skip
    return [Chunk(0, 0.0, duration, 0.0, duration)]


def is_crowded(diarization: Diarization, *, unsure_below: float) -> bool:
    """May this diarization hold more people than it shows?

    The sign is a voice the diarizer was unsure of throughout (`_unsure_slots`). Without
    confidences, every slot taken is the only sign.
    """
    if all(s.confidence is None for s in diarization.segments):
        return len({s.speaker for s in diarization.segments}) >= SPEAKER_SLOTS
    return bool(_unsure_slots(diarization, unsure_below))


def _unsure_slots(diarization: Diarization, unsure_below: float) -> set[str]:
    """Slots with `MIN_SLOT_S` of speech whose mean confidence is below `unsure_below`: a slot
    into which two people were folded matches neither of them well."""
    speech: dict[str, float] = {}
    weighted: dict[str, float] = {}
    for s in diarization.segments:
        if s.confidence is not None:
            speech[s.speaker] = speech.get(s.speaker, 0.0) + (s.end - s.start)
            weighted[s.speaker] = weighted.get(s.speaker, 0.0) + (s.end - s.start) * s.confidence
    return {k for k, seconds in speech.items()
            if seconds >= MIN_SLOT_S and weighted[k] < unsure_below * seconds}  # fmt: skip


async def diarize_finer(
    samples: SampleSource,
    chunks: list[Chunk],
    diarizations: Sequence[Diarization],
    diarize: Diarize,
    options: SpeakerOptions,
) -> tuple[list[Chunk], list[Diarization]]:
    """Diarize every crowded chunk again in halves, and crowded halves again, while the halves
    stay at least `min_piece_s` long; the final plan is numbered in time order."""
    final: list[tuple[Chunk, Diarization]] = []
    level = list(zip(chunks, diarizations, strict=True))
    while level:
        halves: list[Chunk] = []
        for chunk, diarization in level:
            long_enough = chunk.own_end_s - chunk.own_start_s >= 2 * options.min_piece_s
            if long_enough and is_crowded(diarization, unsure_below=options.unsure_below):
                halves.extend(halve(samples, SAMPLE_RATE, chunk, overlap_s=options.overlap_s))
            else:
                final.append((chunk, diarization))
        # One level at a time, so `chunk_concurrency` applies across all the halves.
        level = list(zip(halves, await diarize(halves), strict=True)) if halves else []
    final.sort(key=lambda cd: cd[0].own_start_s)
    return [replace(c, index=n) for n, (c, _) in enumerate(final)], [d for _, d in final]


async def diarize_slots(
    samples: SampleSource,
    chunks: list[Chunk],
    diarizations: list[Diarization],
    diarize: SubDiarize,
    options: SpeakerOptions,
) -> list[Diarization]:
    """Slots still unsure after `diarize_finer` are diarized again on their own speech
    (`slot_split`) and replaced by the voices found in it."""
    split_below = options.unsure_below if options.split_below is None else options.split_below
    return await split_slots(
        lambda n: slice_samples(samples, SAMPLE_RATE, chunks[n]),
        diarizations,
        lambda d: _unsure_slots(d, split_below),
        diarize,
        SAMPLE_RATE,
        min_distance=options.split_distance,
        min_speech_s=options.min_reliable_speech_s,
    )


def _clip_diarizer(upstream: SpeechUpstream, options: SpeakerOptions) -> SubDiarize:
    """Diarize clips through the container, at most `chunk_concurrency` at a time."""
    gate = asyncio.Semaphore(max(options.chunk_concurrency, 1))

    async def one(make: Callable[[], np.ndarray]) -> Diarization:
        async with gate:  # the clip is read and encoded inside, like a chunk
            return parse_diarization(await upstream.diarize_chunk(pcm_to_wav(make(), SAMPLE_RATE)))

    async def diarize(makers: list[Callable[[], np.ndarray]]) -> list[Diarization]:
        return await _all_or_first_failure(one(make) for make in makers)

    return diarize


async def _all_or_first_failure[T](jobs: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Run the jobs at once; the first failure (a wedge, a timeout) cancels the others and is
    raised as it is."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(job) for job in jobs]
    except* Exception as failures:
        raise failures.exceptions[0] from None
    return [task.result() for task in tasks]


async def _run_chunks(
    upstream: SpeechUpstream,
    samples: SampleSource,
    chunks: list[Chunk],
    options: SpeakerOptions,
    language: str | None,
    stt_model: str | None,
    *,
    transcribe: bool,
) -> list[tuple[Transcript | None, Diarization]]:
    gate = asyncio.Semaphore(max(options.chunk_concurrency, 1))

    async def run(chunk: Chunk) -> tuple[Transcript | None, Diarization]:
        async with gate:
            # Encode inside the gate so at most `chunk_concurrency` chunk WAVs exist at once.
            wav = pcm_to_wav(slice_samples(samples, SAMPLE_RATE, chunk), SAMPLE_RATE)
            diarize = upstream.diarize_chunk(wav)
            if not transcribe:
                return None, parse_diarization(await diarize)
            transcription = upstream.transcribe(
                wav,
                language=language,
                response_format="verbose_json",
                granularities=("word", "segment"),
                model=stt_model,
            )
            raw_transcript, raw_diarization = await asyncio.gather(transcription, diarize)
            return parse_transcript(raw_transcript), parse_diarization(raw_diarization)

    return await _all_or_first_failure(run(chunk) for chunk in chunks)


def _owned_words(chunks: list[Chunk], transcripts: Sequence[Transcript | None]) -> list[Word]:
    words: list[Word] = []
    for chunk, transcript in zip(chunks, transcripts, strict=True):
        if transcript is not None:
            is_last = chunk.index == len(chunks) - 1
            words.extend(owned_words(shift_words(transcript.words, chunk.start_s), chunk,
                                     is_last=is_last))  # fmt: skip
    return words


async def clip_fingerprint(upstream: SpeechUpstream, samples: SampleSource
                           ) -> tuple[np.ndarray, float] | None:  # fmt: skip
    """The fingerprint of the voice that speaks most in a clip, and its clean seconds; None
    when no voice in it has enough clean speech for one (enrolment, who-spoke)."""
    wav = pcm_to_wav(samples[:], SAMPLE_RATE)  # a clip: short by the caller's cap
    diarization = parse_diarization(await upstream.diarize_chunk(wav))
    voiced = [(label, vector) for label, vector in diarization.fingerprints.items()
              if vector is not None and np.any(vector)]  # fmt: skip
    if not voiced:
        return None
    label, vector = max(voiced, key=lambda lv: diarization.clean_speech_s.get(lv[0], 0.0))
    return np.asarray(vector, np.float64), diarization.clean_speech_s.get(label, 0.0)


def _models(stt_model: str | None, diarization: Diarization) -> dict[str, str | None]:
    return {
        "transcription": stt_model,
        "diarization": diarization.models.get("diarization"),
        **({"embedding": diarization.models["embedding"]} if "embedding" in diarization.models
           else {}),
    }  # fmt: skip


def link_and_merge(
    chunks: list[Chunk],
    diarizations: Sequence[Diarization],
    words: list[Word],
    *,
    options: SpeakerOptions,
    language: str | None,
    models: dict[str, str | None],
    duration_s: float,
    voiceprints: Sequence[Voiceprint] = (),
    linker: Linker | None = None,
) -> SpeakerTranscript:
    """Link the chunks' speakers, name enrolled voices, and merge words into turns."""
    local: list[LocalSpeaker] = []
    per_chunk: list[list[SpeakerSegment]] = []
    for chunk, diarization in zip(chunks, diarizations, strict=True):
        kept = owned_segments(shift_segments(diarization.segments, chunk.start_s), chunk)
        per_chunk.append(kept)
        local.extend(_local_speakers(chunk, diarization, kept, options.unsure_below))
    linking = (linker or _default_linker(options))(local)
    named = name_local_speakers(
        local, linking, voiceprints, threshold=options.name_threshold,
        min_reliable_speech_s=options.min_reliable_speech_s,
        confirm_threshold=options.name_threshold + options.confirm_margin,
    )  # fmt: skip
    segments: list[SpeakerSegment] = []
    unsure: list[SpeakerSegment] = []
    # A name is shown only on speech it is sure of: where the diarizer was unsure who spoke
    # (or, for a name that came through the linking, the link was), a stranger folded into an
    # enrolled person's slot would otherwise carry that person's name; such speech keeps its
    # `Speaker_N`, marked `?`. A name from the slot's own voice ignores the link's doubt,
    # which is only about which `Speaker_N` the slot joins. A segment whose own print matches
    # someone is shown under that name whatever its slot was given: the diarizer may have
    # folded that person into another's slot.
    names: dict[SpeakerSegment, NameMatch] = {}
    own_named: list[tuple[SpeakerSegment, NameMatch]] = []  # unlinked speech, named by its voice
    for chunk, kept in zip(chunks, per_chunk, strict=True):
        for s in kept:
            key = (chunk.index, s.speaker)
            label = linking.labels.get(key)
            own = _segment_name(s, voiceprints, options)
            if label is None:
                if own is None:
                    unsure.append(s)
                else:
                    own_named.append((replace(s, speaker=own.voiceprint.name, voice=None), own))
                continue
            if own is not None:
                segment = SpeakerSegment(s.start, s.end, label, s.confidence)
                segments.append(segment)
                names[segment] = own
                continue
            link = linking.confidence.get(key, 1.0)
            confidence = None if s.confidence is None else round(s.confidence * link, 4)
            segment = SpeakerSegment(s.start, s.end, label, confidence)
            segments.append(segment)
            match = named.get(key)
            sure = s.confidence if match is not None and match.own_voice else confidence
            if match is not None and (sure is None or sure >= options.low_confidence):
                names[segment] = match
    segments.sort(key=lambda s: (s.start, s.end))
    segments = [
        replace(s, speaker=names[s].voiceprint.name) if s in names else s
        for s in _fill_unsure(segments, unsure)
    ]
    segments = sorted(segments + [s for s, _ in own_named], key=lambda s: (s.start, s.end))
    return _merge(
        words,
        segments,
        duration_s=duration_s,
        language=language,
        models=models,
        options=options,
        chunks=len(chunks),
        names=_closest_matches([*names.values(), *(m for _, m in own_named)]),
    )


def _segment_name(segment: SpeakerSegment, voiceprints: Sequence[Voiceprint],
                  options: SpeakerOptions) -> NameMatch | None:  # fmt: skip
    """The enrolled person a long enough segment's own print matches, if any."""
    if segment.voice is None or segment.end - segment.start < options.segment_name_min_s:
        return None
    return nearest_name(segment.voice, voiceprints,
                        threshold=options.name_threshold + options.segment_name_margin)  # fmt: skip


def _closest_matches(matches: Iterable[NameMatch]) -> dict[str, NameMatch]:
    """Each name shown, with its closest match among the local speakers that carry it."""
    best: dict[str, NameMatch] = {}
    for match in matches:
        name = match.voiceprint.name
        if name not in best or match.similarity > best[name].similarity:
            best[name] = match
    return best


def _default_linker(options: SpeakerOptions) -> Linker:
    def link(speakers: Sequence[LocalSpeaker]) -> Linking:
        return link_local_speakers(
            speakers,
            threshold=options.link_threshold,
            min_reliable_speech_s=options.min_reliable_speech_s,
            rejoin_threshold=options.rejoin_threshold,
        )

    return link


def _fill_unsure(
    segments: list[SpeakerSegment], unsure: list[SpeakerSegment]
) -> list[SpeakerSegment]:
    """Speech of an unlinked slot goes to the nearest linked segment at confidence 0, so its
    words are shown under a neighbour's label but marked unsure, never confidently guessed."""
    if not unsure or not segments:
        return segments
    starts = np.array([s.start for s in segments])
    filled = list(segments)
    for s in unsure:
        at = int(np.searchsorted(starts, s.start))
        candidates = [segments[i] for i in (at - 1, at) if 0 <= i < len(segments)]
        nearest = min(candidates, key=lambda c: max(c.start - s.end, s.start - c.end, 0.0))
        filled.append(SpeakerSegment(s.start, s.end, nearest.speaker, 0.0))
    filled.sort(key=lambda s: (s.start, s.end))
    return filled


def _merge(
    words: list[Word],
    segments: list[SpeakerSegment],
    *,
    duration_s: float,
    language: str | None,
    models: dict[str, str | None],
    options: SpeakerOptions,
    chunks: int = 1,
    names: dict[str, NameMatch] | None = None,
) -> SpeakerTranscript:
    turns = turns_from_assignment(
        assign(words, segments),
        max_pause_s=options.max_pause_s,
        low_confidence=options.low_confidence,
    )
    speakers = list(dict.fromkeys(t.speaker for t in turns))
    # Speakers the diarizer heard but no word was given to still count as detected.
    for s in segments:
        if s.speaker not in speakers:
            speakers.append(s.speaker)
    return SpeakerTranscript(
        turns=turns,
        speakers=speakers,
        duration_s=duration_s,
        language=language,
        models=models,
        chunks=chunks,
        words=words,
        segments=segments,
        names=names or {},
    )


def _local_speakers(
    chunk: Chunk, diarization: Diarization, kept: list[SpeakerSegment], unsure_below: float
) -> list[LocalSpeaker]:
    """One entry per local speaker that still has speech in the chunk's owned span."""
    first: dict[str, float] = {}
    for seg in kept:
        first.setdefault(seg.speaker, seg.start)
    unsure = _unsure_slots(diarization, unsure_below)
    return [
        LocalSpeaker(
            chunk=chunk.index,
            label=label,
            fingerprint=diarization.fingerprints.get(label),
            clean_speech_s=diarization.clean_speech_s.get(
                label, _speech_seconds(diarization.segments, label)
            ),
            first_start_s=start,
            mixed=label in unsure,
        )
        for label, start in first.items()
    ]


def _speech_seconds(segments: list[SpeakerSegment], label: str) -> float:
    """Fallback when the container does not report clean speech: the speaker's total time."""
    return sum(s.end - s.start for s in segments if s.speaker == label)
