"""Tell apart the people folded into one diarizer slot by diarizing the slot's own speech.

Sortformer has four slots per call, so in a piece where more people talk some of them share a
slot; halving the piece (`pipeline.diarize_finer`) stops at `min_piece_s`. A slot the
diarizer was unsure of throughout is then cut out on its own: its segments are joined, with a
short silence between them, into one clip, and that clip is diarized again. The clip holds
only the voices of that slot, so the diarizer's slots are free for them. When the clip shows
two voices with reliable prints that lie clearly apart, its voices replace the slot (segments
mapped back to the piece's time), so each is linked and named where it speaks; otherwise the
slot stays as it was.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from .parsing import Diarization
from .records import SpeakerSegment

GAP_S = 0.5  # silence between the joined stretches, so no window spans two of them
# Diarizes clips; each is made by its function when its turn comes, so only the clips being
# diarized are in memory.
SubDiarize = Callable[[list[Callable[[], np.ndarray]]], Awaitable[list[Diarization]]]


@dataclass(frozen=True, slots=True)
class Stretch:
    """One segment of the slot: where it lies in the clip and in the piece."""

    clip_start_s: float
    piece_start_s: float
    length_s: float


def slot_stretches(segments: Sequence[SpeakerSegment], sample_rate: int) -> list[Stretch]:
    """Where each of the slot's segments lies in its clip: in time order, `GAP_S` apart."""
    stretches: list[Stretch] = []
    at = 0.0
    for seg in sorted(segments, key=lambda s: s.start):
        first, last = round(seg.start * sample_rate), round(seg.end * sample_rate)
        if last <= first:
            continue
        if stretches:
            at += GAP_S
        stretches.append(Stretch(at, first / sample_rate, (last - first) / sample_rate))
        at += (last - first) / sample_rate
    return stretches


def slot_clip(samples: np.ndarray, sample_rate: int, stretches: Sequence[Stretch]) -> np.ndarray:
    """The stretches of a piece's `samples` joined with `GAP_S` of silence (zeros past the
    piece's end, so every stretch keeps its place in the clip)."""
    clip = np.zeros(round((stretches[-1].clip_start_s + stretches[-1].length_s) * sample_rate)
                    if stretches else 0, dtype=samples.dtype)  # fmt: skip
    for st in stretches:
        first = round(st.piece_start_s * sample_rate)
        part = samples[first : first + round(st.length_s * sample_rate)]
        at = round(st.clip_start_s * sample_rate)
        clip[at : at + len(part)] = part
    return clip


def map_back(segments: Sequence[SpeakerSegment], stretches: Sequence[Stretch], prefix: str
             ) -> list[SpeakerSegment]:  # fmt: skip
    """Clip-time segments to piece time, cut at the stretches' edges (the gaps dropped);
    labels get `prefix` so they stay apart from the piece's other slots."""
    out: list[SpeakerSegment] = []
    for seg in segments:
        for st in stretches:
            start = max(seg.start, st.clip_start_s)
            end = min(seg.end, st.clip_start_s + st.length_s)
            if end > start:
                shift = st.piece_start_s - st.clip_start_s
                out.append(replace(seg, start=start + shift, end=end + shift,
                                   speaker=f"{prefix}{seg.speaker}"))  # fmt: skip
    return out


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / (np.linalg.norm(vector) or 1.0)


def distinct_voices(sub: Diarization, *, min_distance: float, min_speech_s: float) -> bool:
    """Does the clip hold at least two voices with prints from `min_speech_s` of clean speech
    that lie at least `min_distance` apart (cosine)? One voice over-split by the diarizer
    mostly gives prints closer than that."""
    prints = [
        _unit(np.asarray(v, np.float64))
        for label, v in sub.fingerprints.items()
        if v is not None and np.any(v) and sub.clean_speech_s.get(label, 0.0) >= min_speech_s
    ]
    return any(
        1.0 - float(a @ b) >= min_distance for i, a in enumerate(prints) for b in prints[i + 1 :]
    )


def split_slot(diarization: Diarization, label: str, sub: Diarization,
               stretches: Sequence[Stretch]) -> Diarization:  # fmt: skip
    """`diarization` with slot `label` replaced by the voices `sub` found in its speech."""
    prefix = f"{label}/"
    segments = [s for s in diarization.segments if s.speaker != label]
    segments.extend(map_back(sub.segments, stretches, prefix))
    segments.sort(key=lambda s: (s.start, s.end))
    fingerprints = {k: v for k, v in diarization.fingerprints.items() if k != label}
    fingerprints.update({prefix + k: v for k, v in sub.fingerprints.items()})
    clean = {k: v for k, v in diarization.clean_speech_s.items() if k != label}
    clean.update({prefix + k: v for k, v in sub.clean_speech_s.items()})
    speakers = list(dict.fromkeys(s.speaker for s in segments))
    return replace(diarization, segments=segments, speakers=speakers,
                   fingerprints=fingerprints, clean_speech_s=clean)  # fmt: skip


async def split_slots(
    piece_samples: Callable[[int], np.ndarray],
    diarizations: Sequence[Diarization],
    unsure: Callable[[Diarization], set[str]],
    diarize: SubDiarize,
    sample_rate: int,
    *,
    min_distance: float,
    min_speech_s: float,
) -> list[Diarization]:
    """Every piece's diarization with its unsure slots split where their speech shows two or
    more distinct voices; `piece_samples(n)` reads piece n's audio, and all the slots' clips
    go to `diarize` in one batch."""
    jobs: list[tuple[int, str, list[Stretch]]] = []
    for n, diarization in enumerate(diarizations):
        for label in sorted(unsure(diarization)):
            own = [s for s in diarization.segments if s.speaker == label]
            if stretches := slot_stretches(own, sample_rate):
                jobs.append((n, label, stretches))

    def maker(n: int, stretches: list[Stretch]) -> Callable[[], np.ndarray]:
        return lambda: slot_clip(piece_samples(n), sample_rate, stretches)

    makers = [maker(n, stretches) for n, _, stretches in jobs]
    out = list(diarizations)
    if not jobs:
        return out
    for (n, label, stretches), sub in zip(jobs, await diarize(makers), strict=True):
        if distinct_voices(sub, min_distance=min_distance, min_speech_s=min_speech_s):
            out[n] = split_slot(out[n], label, sub, stretches)
    return out
