"""Cut long audio at silences into chunks that overlap a little.

Each chunk *owns* the span between two cut points; it is sent with `overlap_s` of extra
audio on each side so words at its edges are heard whole, and `dedupe` later keeps only
what falls in the owned span. Cuts go to the quietest stretch near the target length, so a
cut rarely lands inside a word.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from typing import Protocol

import numpy as np
import numpy.typing as npt


class SampleSource(Protocol):
    """16 kHz samples that slice like an array: an array, or a file read slice by slice."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: slice, /) -> npt.NDArray[np.int16]: ...


# Sortformer has four speaker slots per chunk: chunks short enough that rarely more than four
# people speak in one keep six-person meetings whole (120 s chosen by measurement, see
# docs/benchmarks.md); linking then joins the chunks' speakers.
DEFAULT_CHUNK_S = 120.0
DEFAULT_OVERLAP_S = 1.0
DEFAULT_SEARCH_S = 30.0
_FRAME_S = 0.02
_QUIET_WINDOW_S = 0.4  # the pause we look for is about this long


@dataclass(frozen=True, slots=True)
class Chunk:
    """One piece of the recording, in seconds from its start."""

    index: int
    start_s: float  # audio sent (with overlap)
    end_s: float
    own_start_s: float  # span this chunk is responsible for
    own_end_s: float


def plan_chunks(
    samples: SampleSource,
    sample_rate: int,
    *,
    chunk_s: float = DEFAULT_CHUNK_S,
    overlap_s: float = DEFAULT_OVERLAP_S,
    search_s: float = DEFAULT_SEARCH_S,
) -> list[Chunk]:
    """Plan chunks of at most about `chunk_s` (+ overlap) covering all of `samples`."""
    if chunk_s <= 0 or overlap_s < 0 or search_s < 0:
        raise ValueError("chunk_s must be positive; overlap_s and search_s not negative")
    duration = len(samples) / sample_rate
    if duration <= chunk_s:
        return [Chunk(0, 0.0, duration, 0.0, duration)]
    energy = _quiet_energy(samples, sample_rate)
    # Equal shares rather than full chunks plus a short tail: a diarizer given a few
    # seconds says little about who is speaking, and its fingerprints are weak.
    share = duration / math.ceil(duration / chunk_s)
    search = min(search_s, share / 2)
    cuts = [0.0]
    while duration - cuts[-1] > chunk_s:
        target = min(cuts[-1] + share + search / 2, cuts[-1] + chunk_s)
        cuts.append(_quietest(energy, target - search, target))
    cuts.append(duration)
    return [
        Chunk(
            index=i,
            start_s=max(0.0, own_start - overlap_s),
            end_s=min(duration, own_end + overlap_s),
            own_start_s=own_start,
            own_end_s=own_end,
        )
        for i, (own_start, own_end) in enumerate(pairwise(cuts))
    ]


def halve(samples: SampleSource, sample_rate: int, chunk: Chunk, *,
          overlap_s: float = DEFAULT_OVERLAP_S) -> tuple[Chunk, Chunk]:  # fmt: skip
    """Two chunks owning the halves of `chunk`'s owned span, cut at its quietest moment
    between 40 % and 60 % of it, each sent with `overlap_s` of extra audio on both sides.

    Both get `chunk`'s index; the caller numbers the final plan.
    """
    duration = len(samples) / sample_rate
    length = chunk.own_end_s - chunk.own_start_s
    span = samples[round(chunk.own_start_s * sample_rate) : round(chunk.own_end_s * sample_rate)]
    cut = chunk.own_start_s + _quietest(_quiet_energy(span, sample_rate), 0.4 * length,
                                        0.6 * length)  # fmt: skip

    def piece(own_start: float, own_end: float) -> Chunk:
        return Chunk(
            index=chunk.index,
            start_s=max(0.0, own_start - overlap_s),
            end_s=min(duration, own_end + overlap_s),
            own_start_s=own_start,
            own_end_s=own_end,
        )

    return piece(chunk.own_start_s, cut), piece(cut, chunk.own_end_s)


def _quiet_energy(samples: SampleSource, sample_rate: int) -> np.ndarray:
    """Frame energy smoothed over a pause-length window (one value per 20 ms frame)."""
    frame = max(int(sample_rate * _FRAME_S), 1)
    n_frames = len(samples) // frame
    # A minute at a time: the samples may be a file mapping of hours, and a float copy of all
    # of them would take twice their size in memory.
    step = max(int(60 / _FRAME_S), 1)
    power = np.empty(n_frames, dtype=np.float32)
    for first in range(0, n_frames, step):
        last = min(first + step, n_frames)
        block = samples[first * frame : last * frame].astype(np.float32).reshape(-1, frame)
        power[first:last] = np.mean(block * block, axis=1)
    width = max(int(_QUIET_WINDOW_S / _FRAME_S), 1)
    kernel = np.ones(width, dtype=np.float32) / width
    return np.convolve(power, kernel, mode="same")


def _quietest(energy: np.ndarray, lo_s: float, hi_s: float) -> float:
    """Centre of the quietest frame in [lo_s, hi_s]; the latest one on ties keeps chunks long."""
    lo = max(int(lo_s / _FRAME_S), 1)
    hi = min(int(hi_s / _FRAME_S), len(energy) - 1)
    if hi <= lo:
        return hi_s
    window = energy[lo : hi + 1]
    quietest = np.flatnonzero(window <= window.min() * 1.0001 + 1e-6)
    return float((lo + quietest[-1]) * _FRAME_S + _FRAME_S / 2)


def slice_samples(samples: SampleSource, sample_rate: int, chunk: Chunk) -> np.ndarray:
    """The samples sent for `chunk`."""
    return samples[round(chunk.start_s * sample_rate) : round(chunk.end_s * sample_rate)]
