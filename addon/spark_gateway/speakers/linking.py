"""Link the local speakers of every chunk into one global set of speakers.

Each chunk's diarizer numbers speakers in its own order of arrival, so `Speaker_0` of one
chunk may be `Speaker_1` of the next. Every local speaker brings a voice fingerprint:

1. Inside each chunk, speakers whose fingerprints are closer than `rejoin_threshold` are
   one person the diarizer split in two: they are joined before anything else.
2. Fingerprints from enough clean speech ("reliable") are clustered by average-linkage
   agglomerative clustering on cosine distance, cut at `threshold`, never merging two
   clusters that hold speakers of the same chunk.
3. Each chunk's reliable speakers are then matched to the cluster centroids with the
   Hungarian method, so two speakers of one chunk never share a cluster (cannot-link). A
   reliable speaker whose match is farther than `threshold` starts a new cluster instead.
4. Weak speakers (little clean speech) join the nearest cluster still free in their chunk,
   but only when it is closer than `threshold`; a weak speaker without a fingerprint, or far
   from every free cluster, is left unmapped rather than given someone's label on a guess
   (the pipeline marks its words as unsure).

A `mixed` speaker (a slot the diarizer was unsure of throughout, probably two people folded
into one) never seeds the clusters of step 2: its print lies between two people and would
pull them together. It is matched in step 3 like any other, so far from every cluster it
opens a speaker of its own rather than joining one.

Every mapped local speaker also gets a link confidence from the margin between its nearest
and second-nearest cluster, so a close call shows in the turn confidence. Global labels
follow the order in which speakers first talk in the recording.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

# Cosine distances chosen by benchmarks/eval_diarization.py on the CAM++ stand-in's tuning voices
# (docs/diarization.md, "The evaluation with CAM++"): CAM++ is a modern verification encoder
# like the GPU node's TitaNet, whose same-speaker distances lie well under NeMo's own 0.6
# boundary. To be chosen again on TitaNet prints. The simulator's default GE2E stand-in packs
# voices far closer together (one voice 0.02-0.15): its tests pass GE2E's own values
# (tests/speakers/conftest.py).
DEFAULT_LINK_THRESHOLD = 0.30
# Two slots of one chunk this close are one person the diarizer split (CAM++'s tuning chose it
# from 0-0.40; two different CAM++ voices have been seen 0.49 apart).
DEFAULT_REJOIN_THRESHOLD = 0.30
DEFAULT_MIN_RELIABLE_SPEECH_S = 3.0
_FORBIDDEN_COST = 1e6


@dataclass(frozen=True, slots=True)
class LocalSpeaker:
    """One speaker as one chunk's diarizer saw it."""

    chunk: int
    label: str
    fingerprint: np.ndarray | None
    clean_speech_s: float
    first_start_s: float  # recording time of its first segment, for stable global naming
    # The diarizer was unsure of this voice throughout: probably two people in one slot.
    mixed: bool = False


LocalKey = tuple[int, str]


@dataclass(frozen=True, slots=True)
class Linking:
    """The linker's answer: labels, how sure each link is, and each global voice's print."""

    labels: dict[LocalKey, str]
    confidence: dict[LocalKey, float] = field(default_factory=dict)
    fingerprints: dict[str, np.ndarray] = field(default_factory=dict)  # unit vectors


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def _has_print(speaker: LocalSpeaker) -> bool:
    return speaker.fingerprint is not None and bool(np.any(speaker.fingerprint))


def link_speakers(
    speakers: Sequence[LocalSpeaker],
    *,
    threshold: float = DEFAULT_LINK_THRESHOLD,
    min_reliable_speech_s: float = DEFAULT_MIN_RELIABLE_SPEECH_S,
    rejoin_threshold: float = DEFAULT_REJOIN_THRESHOLD,
    label_prefix: str = "Speaker_",
) -> dict[LocalKey, str]:
    """Map (chunk, local label) to a global label such as `Speaker_0`; unsure slots are
    left out of the mapping."""
    return link_local_speakers(
        speakers,
        threshold=threshold,
        min_reliable_speech_s=min_reliable_speech_s,
        rejoin_threshold=rejoin_threshold,
        label_prefix=label_prefix,
    ).labels


def link_local_speakers(
    speakers: Sequence[LocalSpeaker],
    *,
    threshold: float = DEFAULT_LINK_THRESHOLD,
    min_reliable_speech_s: float = DEFAULT_MIN_RELIABLE_SPEECH_S,
    rejoin_threshold: float = DEFAULT_REJOIN_THRESHOLD,
    label_prefix: str = "Speaker_",
) -> Linking:
    """The full linking (see the module docstring)."""
    if not speakers:
        return Linking({})
    joined_to = _rejoin_splits(speakers, rejoin_threshold)
    heads = [s for i, s in enumerate(speakers) if joined_to[i] == i]
    usable = [s for s in heads if _has_print(s)]
    reliable = [s for s in usable if s.clean_speech_s >= min_reliable_speech_s] or usable
    # A mixed voice's print lies between two people: it never seeds the clusters, where it
    # would pull two people together; far from every cluster it still opens its own.
    seeds = [s for s in reliable if not s.mixed] or reliable
    centroids = _initial_centroids(seeds, threshold)
    cluster_of, confidence = _constrained_assignment(
        heads, centroids, threshold, set(map(id, reliable))
    )
    for i, head in enumerate(joined_to):
        if head != i:
            key, head_key = _key(speakers[i]), _key(speakers[head])
            if head_key in cluster_of:
                cluster_of[key] = cluster_of[head_key]
                confidence[key] = confidence[head_key]
    names = _name_clusters(speakers, cluster_of, label_prefix)
    labels = {key: names[cluster] for key, cluster in cluster_of.items()}
    return Linking(labels, confidence, _global_prints(speakers, labels))


def _key(speaker: LocalSpeaker) -> LocalKey:
    return (speaker.chunk, speaker.label)


def _rejoin_splits(speakers: Sequence[LocalSpeaker], rejoin_threshold: float) -> list[int]:
    """Per speaker, the index of the speaker of its chunk it is joined to (itself if none).

    Only two fingerprints that nearly coincide are joined: different people of one chunk are
    never that close, while a diarizer splitting one voice gives two copies of it.
    """
    joined = list(range(len(speakers)))
    by_chunk: dict[int, list[int]] = {}
    for i, s in enumerate(speakers):
        if _has_print(s):
            by_chunk.setdefault(s.chunk, []).append(i)
    for members in by_chunk.values():
        if len(members) < 2:
            continue
        # Best attested first, so a sliver joins the speaker who said the most.
        members.sort(key=lambda i: -speakers[i].clean_speech_s)
        units = _unit_rows(np.stack([np.asarray(speakers[i].fingerprint, np.float64)
                                     for i in members]))  # fmt: skip
        for pos, i in enumerate(members):
            for earlier in range(pos):
                head = members[earlier]
                if joined[head] == head and 1.0 - float(units[pos] @ units[earlier]) < (
                    rejoin_threshold
                ):
                    joined[i] = head
                    break
    return joined


def _initial_centroids(reliable: Sequence[LocalSpeaker], threshold: float) -> list[np.ndarray]:
    """Cluster the reliable fingerprints and return unit-length centroids.

    Average-linkage agglomeration on cosine distance that never merges two clusters holding
    speakers of the same chunk (the diarizer told those apart): without that constraint two
    similar voices merge early and every later chunk has to undo it.
    """
    if not reliable:
        return []
    vectors = _unit_rows(np.stack([np.asarray(s.fingerprint, dtype=np.float64) for s in reliable]))
    n = len(reliable)
    # Unit vectors: cosine distance is 1 - dot product; one BLAS product beats pdist by far.
    # A forbidden pair is an infinite distance, and stays one through averaging.
    # float32 halves the memory traffic of the merges; distances need no more precision.
    distance = np.clip(1.0 - vectors @ vectors.T, 0.0, 2.0).astype(np.float32)
    chunks = np.array([s.chunk for s in reliable])
    distance[chunks[:, None] == chunks[None, :]] = np.inf
    sizes = np.ones(n, np.float32)
    members: list[list[int]] = [[i] for i in range(n)]
    alive = np.ones(n, dtype=bool)
    # Each row's nearest neighbour, kept up to date so a merge costs O(n), not O(n^2).
    nearest = np.argmin(distance, axis=1)
    nearest_d = distance[np.arange(n), nearest]
    while True:
        i = int(np.argmin(nearest_d))
        j = int(nearest[i])
        if not nearest_d[i] < threshold:
            break
        # Merge j into i: average linkage is the size-weighted mean of the two rows.
        row = distance[i] * (sizes[i] / (sizes[i] + sizes[j]))
        row += distance[j] * (sizes[j] / (sizes[i] + sizes[j]))
        row[i] = row[j] = np.inf
        distance[i, :] = row
        distance[:, i] = row
        distance[j, :] = np.inf
        distance[:, j] = np.inf
        sizes[i] += sizes[j]
        members[i].extend(members[j])
        alive[j] = False
        nearest_d[j] = np.inf
        # Rows that pointed at i or j look again; the others only compare with the new row.
        pointed = (nearest == i) | (nearest == j)
        pointed &= alive
        pointed[i] = True
        stale = np.flatnonzero(pointed)
        nearest[stale] = np.argmin(distance[stale], axis=1)
        nearest_d[stale] = distance[stale, nearest[stale]]
        closer = alive & (row < nearest_d)
        nearest[closer] = i
        nearest_d[closer] = row[closer]
    centroids = []
    for k in np.flatnonzero(alive):
        mean = vectors[members[k]].mean(axis=0)
        centroids.append(mean / (np.linalg.norm(mean) or 1.0))
    return centroids


def _constrained_assignment(
    speakers: Sequence[LocalSpeaker],
    centroids: list[np.ndarray],
    threshold: float,
    reliable_ids: set[int],
) -> tuple[dict[LocalKey, int], dict[LocalKey, float]]:
    """Hungarian matching per chunk: distinct clusters for the speakers of one chunk."""
    dim = next((len(s.fingerprint) for s in speakers if s.fingerprint is not None), 1)
    has_print = np.array([_has_print(s) for s in speakers])
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
    confidence: dict[LocalKey, float] = {}
    for chunk in sorted(by_chunk):
        members = by_chunk[chunk]
        firm = [i for i in members if id(speakers[i]) in reliable_ids]
        weak = [i for i in members if id(speakers[i]) not in reliable_ids and has_print[i]]
        # Reliable speakers first: a match closer than `threshold` wins, else a new cluster.
        taken: set[int] = set()
        for i, matched in _match(firm, units, matrix, set(), decline=threshold):
            if matched is None:
                matrix = np.vstack([matrix, units[i]])
                matched = matrix.shape[0] - 1  # noqa: PLW2901 - a new cluster for this one
            taken.add(matched)
            cluster_of[_key(speakers[i])] = matched
            confidence[_key(speakers[i])] = _margin_confidence(units[i], matrix, matched)
        # Then weak ones join a free cluster only when it is near enough; else they stay
        # unmapped (mostly a diarizer's split or invented slot, NeMo issue #15711).
        if matrix.shape[0] == 0 and weak:
            matrix = units[weak[:1]]
            taken.add(0)
            cluster_of[_key(speakers[weak[0]])] = 0
            confidence[_key(speakers[weak[0]])] = 1.0
            weak = weak[1:]
        for i, col in _match(weak, units, matrix, taken, decline=threshold):
            if col is not None:
                taken.add(col)
                cluster_of[_key(speakers[i])] = col
                confidence[_key(speakers[i])] = _margin_confidence(units[i], matrix, col)
        if matrix.shape[0] == 0:
            # Nothing to compare with at all: each print-less speaker keeps a label of its own.
            for i in members:
                cluster_of.setdefault(_key(speakers[i]), -1 - len(cluster_of))
    return cluster_of, confidence


def _margin_confidence(unit: np.ndarray, matrix: np.ndarray, chosen: int) -> float:
    """How clearly `chosen` beats the runner-up: 1 - d_best / d_second (1.0 when alone)."""
    if matrix.shape[0] < 2:
        return 1.0
    distances = 1.0 - matrix @ unit
    best = min(max(float(distances[chosen]), 0.0), 2.0)
    distances[chosen] = np.inf
    runner_up = min(max(float(distances.min()), 0.0), 2.0)
    if runner_up <= 0:
        return 0.0
    return round(max(0.0, min(1.0, 1.0 - best / runner_up)), 4)


def _match(
    rows: list[int],
    units: np.ndarray,
    matrix: np.ndarray,
    taken: set[int],
    *,
    decline: float,
) -> list[tuple[int, int | None]]:
    """Hungarian matching of `rows` to free clusters; None means "no cluster for this one"
    (every free cluster farther than `decline`)."""
    if not rows:
        return []
    free = [c for c in range(matrix.shape[0]) if c not in taken]
    cost = np.full((len(rows), len(free) + len(rows)), _FORBIDDEN_COST)
    if free:
        cost[:, : len(free)] = 1.0 - units[rows] @ matrix[free].T
    for r in range(len(rows)):
        cost[r, len(free) + r] = decline
    picked_rows, picked_cols = linear_sum_assignment(cost)
    return [
        (rows[r], free[c] if c < len(free) else None)
        for r, c in zip(picked_rows.tolist(), picked_cols.tolist(), strict=True)
    ]


def _name_clusters(
    speakers: Sequence[LocalSpeaker], cluster_of: Mapping[LocalKey, int], prefix: str
) -> dict[int, str]:
    first_seen: dict[int, float] = {}
    for s in speakers:
        cluster = cluster_of.get(_key(s))
        if cluster is not None:
            first_seen[cluster] = min(first_seen.get(cluster, float("inf")), s.first_start_s)
    order = sorted(first_seen, key=lambda c: (first_seen[c], c))
    return {cluster: f"{prefix}{n}" for n, cluster in enumerate(order)}


def _global_prints(
    speakers: Sequence[LocalSpeaker], labels: Mapping[LocalKey, str]
) -> dict[str, np.ndarray]:
    """Each global speaker's print: its local prints averaged, weighted by clean speech."""
    sums: dict[str, np.ndarray] = {}
    for s in speakers:
        label = labels.get(_key(s))
        if label is None or not _has_print(s):
            continue
        vector = np.asarray(s.fingerprint, np.float64)
        weighted = vector / np.linalg.norm(vector) * max(s.clean_speech_s, 0.1)
        sums[label] = sums[label] + weighted if label in sums else weighted
    return {label: v / (np.linalg.norm(v) or 1.0) for label, v in sums.items()}
