"""Sortformer output → time-sorted segments with confidence, and TitaNet fingerprints.

Sortformer's `diarize()` gives lines grouped by speaker (not by time) and, on request, the
per-frame sigmoid activity of its four speaker slots. The frame rate is taken from the
tensor's length and the audio's duration rather than hard-coded (80 ms for Sortformer, but
padding and model versions differ). A fingerprint is built only from frames where exactly
one speaker is active ("clean"), so overlapped speech never blends two voices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from .audio import SAMPLE_RATE
from .models import to_numpy


class ModelOutputError(RuntimeError):
    """A model returned something of the wrong shape (HTTP 500, logged)."""


@dataclass(frozen=True, slots=True)
class Segment:
    start_s: float
    end_s: float
    speaker: int
    confidence: float | None = None
    # diarize-chunk only: the unit TitaNet print of this segment's own audio, rounded as the
    # speakers' prints; None when the segment is too short or prints were not asked for.
    fingerprint: tuple[float, ...] | None = None


@dataclass
class WindowDiarization:
    """One window's result; speaker indices are local to the window until linked."""

    segments: list[Segment]
    probs: np.ndarray | None  # (T, 4)
    fingerprints: dict[int, np.ndarray | None] = field(default_factory=dict)
    clean_speech_s: dict[int, float] = field(default_factory=dict)


def parse_lines(lines: Any) -> list[Segment]:
    """`"start end speaker_k"` lines (any order) → segments sorted by time."""
    segments = []
    for line in lines:
        parts = str(line).split()
        if len(parts) != 3 or not parts[2].startswith("speaker_"):
            raise ModelOutputError(f"unexpected diarization line {line!r}")
        try:
            start, end, speaker = float(parts[0]), float(parts[1]), int(parts[2][8:])
        except ValueError as err:
            raise ModelOutputError(f"unexpected diarization line {line!r}") from err
        if end > start:
            segments.append(Segment(start, end, speaker))
    segments.sort(key=lambda s: (s.start_s, s.end_s, s.speaker))
    return segments


def unpack_diarize_output(output: Any) -> tuple[list[str], np.ndarray | None]:
    """`diarize(..., include_tensor_outputs=True)` → (lines of the one file, (T, S) probs)."""
    if isinstance(output, tuple) and len(output) == 2:
        all_lines, all_probs = output
    else:
        all_lines, all_probs = output, None
    if not isinstance(all_lines, list) or not all_lines:
        raise ModelOutputError("diarize() returned no per-file line list")
    probs = None
    if all_probs is not None:
        first = all_probs[0] if isinstance(all_probs, list | tuple) else all_probs
        array = to_numpy(first)
        if array.ndim == 3:
            array = array[0]
        if array.ndim != 2:
            raise ModelOutputError(f"probability tensor has shape {array.shape}")
        probs = array
    return list(all_lines[0]), probs


def attach_confidence(
    segments: list[Segment], probs: np.ndarray | None, duration_s: float
) -> list[Segment]:
    """Mean probability of each segment's speaker over its frames; None when unavailable."""
    if probs is None or duration_s <= 0 or probs.shape[0] == 0:
        return [Segment(s.start_s, s.end_s, s.speaker, None) for s in segments]
    fps = probs.shape[0] / duration_s
    out = []
    for s in segments:
        lo = math.floor(s.start_s * fps)
        hi = max(math.ceil(s.end_s * fps), lo + 1)
        column = (
            probs[lo : min(hi, probs.shape[0]), s.speaker] if s.speaker < probs.shape[1] else []
        )
        confidence = round(float(np.mean(column)), 4) if len(column) else None
        out.append(Segment(s.start_s, s.end_s, s.speaker, confidence))
    return out


def clean_masks(
    segments: list[Segment], probs: np.ndarray | None, n_samples: int, threshold: float
) -> dict[int, np.ndarray]:
    """Per speaker, a boolean sample mask of the audio where only that speaker talks."""
    speakers = sorted({s.speaker for s in segments})
    if probs is not None and probs.shape[0] > 0:
        active = probs >= threshold  # (T, S)
        alone = active & (active.sum(axis=1, keepdims=True) == 1)
        per_frame = n_samples / probs.shape[0]
        frame_of_sample = np.minimum(
            (np.arange(n_samples) / per_frame).astype(np.int64), probs.shape[0] - 1
        )
        masks = {
            k: alone[frame_of_sample, k] if k < probs.shape[1] else np.zeros(n_samples, bool)
            for k in speakers
        }
    else:
        # Without the tensor: segment coverage minus any overlap with another speaker.
        count = np.zeros(n_samples, np.int16)
        masks = {k: np.zeros(n_samples, bool) for k in speakers}
        for s in segments:
            lo, hi = int(s.start_s * SAMPLE_RATE), int(s.end_s * SAMPLE_RATE)
            count[lo:hi] += 1
            masks[s.speaker][lo:hi] = True
        masks = {k: m & (count == 1) for k, m in masks.items()}
    # Restrict to each speaker's own segments, so stray activity elsewhere does not count.
    within = {k: np.zeros(n_samples, bool) for k in speakers}
    for s in segments:
        within[s.speaker][int(s.start_s * SAMPLE_RATE) : int(s.end_s * SAMPLE_RATE)] = True
    return {k: masks[k] & within[k] for k in speakers}


def unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def link_windows(windows: list[WindowDiarization]) -> list[dict[int, int]]:
    """Map each window's local speakers to global ones by fingerprint (Hungarian per window).

    Two speakers of one window never share a global speaker. A local speaker without a
    fingerprint takes the nearest free global speaker in time order, or a new one.
    """
    centroids: list[np.ndarray | None] = []
    maps: list[dict[int, int]] = []
    for window in windows:
        local = sorted({s.speaker for s in window.segments})
        mapping: dict[int, int] = {}
        if centroids and local:
            cost = np.full((len(local), len(centroids)), 1.5)
            for i, k in enumerate(local):
                fp = window.fingerprints.get(k)
                for j, c in enumerate(centroids):
                    if fp is not None and c is not None:
                        cost[i, j] = 1.0 - float(unit(fp) @ unit(c))
            rows, cols = linear_sum_assignment(cost)
            for i, j in zip(rows, cols, strict=True):
                # Farther than this, a known voice is less likely than a new one.
                if cost[i, j] <= 0.6 or window.fingerprints.get(local[i]) is None:
                    mapping[local[i]] = int(j)
        for k in local:
            if k not in mapping:
                centroids.append(window.fingerprints.get(k))
                mapping[k] = len(centroids) - 1
            elif centroids[mapping[k]] is None:
                centroids[mapping[k]] = window.fingerprints.get(k)
        maps.append(mapping)
    return maps
