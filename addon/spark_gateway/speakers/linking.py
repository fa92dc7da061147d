"""Link the local speakers of every chunk into one global set of speakers.

Each chunk's diarizer numbers speakers in its own order of arrival, so `Speaker_0` of one
chunk may be `Speaker_1` of the next. Every local speaker brings a voice fingerprint:

1. Fingerprints from enough clean speech ("reliable") are clustered by average-linkage
   agglomerative clustering on cosine distance, cut at `threshold`.
2. Each chunk's local speakers are then matched to the cluster centroids with the Hungarian
   method, so two speakers of one chunk never share a cluster (cannot-link). A reliable
   speaker whose match is farther than `threshold` starts a new cluster instead.
3. Unreliable speakers (little clean speech) and speakers without a fingerprint take part in
   the same matching, but never start a cluster while one is free: they join the nearest.
   A weak speaker for whom no cluster is free is left unmapped: with so little clean speech
   in a whole chunk it is almost always a spurious diarizer slot (a split voice), and its few
   words go to the neighbouring speakers instead.

Global labels follow the order in which speakers first talk in the recording.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.optimize import linear_sum_assignment

# Chosen by measurement with benchmarks/eval_diarization.py (see docs/diarization.md).
DEFAULT_LINK_THRESHOLD = 0.35
DEFAULT_MIN_RELIABLE_SPEECH_S = 3.0
# Cost for a speaker without a fingerprint: worse than any real match, still finite.
_NO_FINGERPRINT_COST = 1.5
_FORBIDDEN_COST = 1e6


@dataclass(frozen=True, slots=True)
class LocalSpeaker:
    """One speaker as one chunk's diarizer saw it."""

    chunk: int
    label: str
    fingerprint: np.ndarray | None
    clean_speech_s: float
    first_start_s: float  # recording time of its first segment, for stable global naming


LocalKey = tuple[int, str]


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def link_speakers(
    speakers: Sequence[LocalSpeaker],
    *,
    threshold: float = DEFAULT_LINK_THRESHOLD,
    min_reliable_speech_s: float = DEFAULT_MIN_RELIABLE_SPEECH_S,
    label_prefix: str = "Speaker_",
) -> dict[LocalKey, str]:
    """Map (chunk, local label) to a global label such as `Speaker_0`; spurious slots
    (no fingerprint, no free cluster) are left out of the mapping."""
    if not speakers:
        return {}
    usable = [
        s for s in speakers if s.fingerprint is not None and np.linalg.norm(s.fingerprint) > 0
    ]
    reliable = [s for s in usable if s.clean_speech_s >= min_reliable_speech_s] or usable
    centroids = _initial_centroids(reliable, threshold)
    cluster_of = _constrained_assignment(speakers, centroids, threshold, set(map(id, reliable)))
    return _name_clusters(speakers, cluster_of, label_prefix)


def _initial_centroids(reliable: Sequence[LocalSpeaker], threshold: float) -> list[np.ndarray]:
    """Cluster the reliable fingerprints and return unit-length centroids."""
    if not reliable:
        return []
    vectors = _unit_rows(np.stack([np.asarray(s.fingerprint, dtype=np.float64) for s in reliable]))
    if len(reliable) == 1:
        return [vectors[0]]
    # Unit vectors: cosine distance is 1 - dot product; one BLAS product beats pdist by far.
    distances = np.clip(1.0 - vectors @ vectors.T, 0.0, 2.0)
    condensed = distances[np.triu_indices(len(vectors), k=1)]
    labels = fcluster(linkage(condensed, method="average"), t=threshold, criterion="distance")
    centroids = []
    for cluster in np.unique(labels):
        mean = vectors[labels == cluster].mean(axis=0)
        centroids.append(mean / (np.linalg.norm(mean) or 1.0))
    return centroids


def _constrained_assignment(
    speakers: Sequence[LocalSpeaker],
    centroids: list[np.ndarray],
    threshold: float,
    reliable_ids: set[int],
) -> dict[LocalKey, int]:
    """Hungarian matching per chunk: distinct clusters for the speakers of one chunk."""
    dim = next((len(s.fingerprint) for s in speakers if s.fingerprint is not None), 1)
    has_print = np.array(
        [s.fingerprint is not None and bool(np.any(s.fingerprint)) for s in speakers]
    )
    units = np.zeros((len(speakers), dim))
    if has_print.any():
        units[has_print] = _unit_rows(
            np.stack([np.asarray(s.fingerprint, dtype=np.float64)
                      for s, ok in zip(speakers, has_print, strict=True) if ok])
        )  # fmt: skip
    by_chunk: dict[int, list[int]] = {}
    for i, s in enumerate(speakers):
        by_chunk.setdefault(s.chunk, []).append(i)
    matrix = np.stack(centroids) if centroids else np.zeros((0, dim))
    cluster_of: dict[LocalKey, int] = {}
    for chunk in sorted(by_chunk):
        members = by_chunk[chunk]
        firm = [i for i in members if id(speakers[i]) in reliable_ids]
        weak = [i for i in members if id(speakers[i]) not in reliable_ids]
        # Reliable speakers first: a match closer than `threshold` wins, else a new cluster.
        taken: set[int] = set()
        for i, matched in _match(firm, units, matrix, has_print, set(), new_cost=threshold):
            if matched is None:
                matrix = np.vstack([matrix, units[i]])
                matched = matrix.shape[0] - 1  # noqa: PLW2901 - a new cluster for this one
            taken.add(matched)
            cluster_of[(speakers[i].chunk, speakers[i].label)] = matched
        # Then the weak ones join the nearest cluster still free in this chunk.
        for i, col in _match(weak, units, matrix, has_print, taken, new_cost=None):
            key = (speakers[i].chunk, speakers[i].label)
            if col is not None:
                taken.add(col)
                cluster_of[key] = col
            elif matrix.shape[0] == 0 and has_print[i]:
                matrix = np.vstack([matrix, units[i]])
                taken.add(matrix.shape[0] - 1)
                cluster_of[key] = matrix.shape[0] - 1
            elif matrix.shape[0] == 0:
                # Nothing to compare with at all: a speaker of its own, with no centroid.
                cluster_of[key] = -1 - len(cluster_of)
            # Otherwise: a weak slot and every cluster taken by a better-attested speaker of
            # this chunk. Such slots are mostly the diarizer splitting a voice or inventing
            # one (NeMo issue #15711); the key stays unmapped and the caller drops its
            # segments. A real newcomer who said a few words is lost the same way: a 1-2 s
            # fingerprint cannot tell the two apart (measured: it opened false speakers).
    return cluster_of


def _match(
    rows: list[int],
    units: np.ndarray,
    matrix: np.ndarray,
    has_print: np.ndarray,
    taken: set[int],
    *,
    new_cost: float | None,
) -> list[tuple[int, int | None]]:
    """Hungarian matching of `rows` to free clusters; None means "no cluster for this one".

    With `new_cost`, a row may decline every cluster at that price (a new cluster); without
    it, rows join the nearest free cluster while any is left.
    """
    if not rows:
        return []
    free = [c for c in range(matrix.shape[0]) if c not in taken]
    decline = new_cost if new_cost is not None else _FORBIDDEN_COST / 2
    cost = np.full((len(rows), len(free) + len(rows)), _FORBIDDEN_COST)
    if free:
        block = 1.0 - units[rows] @ matrix[free].T
        block[~has_print[rows]] = _NO_FINGERPRINT_COST
        cost[:, : len(free)] = block
    for r in range(len(rows)):
        cost[r, len(free) + r] = decline
    picked_rows, picked_cols = linear_sum_assignment(cost)
    return [
        (rows[r], free[c] if c < len(free) else None)
        for r, c in zip(picked_rows.tolist(), picked_cols.tolist(), strict=True)
    ]


def _name_clusters(
    speakers: Sequence[LocalSpeaker], cluster_of: Mapping[LocalKey, int], prefix: str
) -> dict[LocalKey, str]:
    first_seen: dict[int, float] = {}
    for s in speakers:
        cluster = cluster_of.get((s.chunk, s.label))
        if cluster is not None:
            first_seen[cluster] = min(first_seen.get(cluster, float("inf")), s.first_start_s)
    order = sorted(first_seen, key=lambda c: (first_seen[c], c))
    names = {cluster: f"{prefix}{n}" for n, cluster in enumerate(order)}
    return {key: names[cluster] for key, cluster in cluster_of.items()}
