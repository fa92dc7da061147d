"""Speed of the merge and of speaker linking (the add-on's pure algorithms).

    .venv/bin/python benchmarks/diarization_merge.py [--repeat 7]

- Merge: a 3-hour meeting, 30,000 words and 3,000 diarization segments (6 speakers, some
  overlap, segments handed over grouped by speaker as Sortformer writes them), through
  word→speaker assignment and turn building. Goal ≤ 50 ms.
- Linking: 2,000 fingerprints (500 chunks, 4 local speakers each, 192 dims, 40 voices) through
  constrained clustering. Goal ≤ 200 ms.

Baselines measured in the same run: for the merge, the common per-word scan over every
segment (numpy-vectorised, WhisperX's rule without its interval tree); for linking, plain
scipy average-linkage clustering of the same vectors (no cannot-link, no reassignment).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "addon"))

from scipy.cluster.hierarchy import fcluster, linkage  # noqa: E402

from spark_gateway.speakers.assignment import assign  # noqa: E402
from spark_gateway.speakers.linking import LocalSpeaker, link_speakers  # noqa: E402
from spark_gateway.speakers.records import SpeakerSegment, Word  # noqa: E402
from spark_gateway.speakers.turns import turns_from_assignment  # noqa: E402


def meeting(
    n_words: int = 30_000, n_segments: int = 3_000, hours: float = 3.0, seed: int = 0
) -> tuple[list[Word], list[SpeakerSegment]]:
    rng = np.random.default_rng(seed)
    duration = hours * 3600
    bounds = np.sort(rng.uniform(0, duration, n_segments - 1))
    edges = np.concatenate([[0.0], bounds, [duration]])
    segments = []
    for k in range(n_segments):
        start, end = edges[k], edges[k + 1]
        overlap = rng.uniform(0, 0.3) if rng.random() < 0.1 else 0.0
        segments.append(
            SpeakerSegment(
                float(start), float(end + overlap), f"speaker_{k % 6}", float(rng.uniform(0.5, 1.0))
            )
        )
    segments.sort(key=lambda s: s.speaker)  # grouped by speaker, as Sortformer writes them
    starts = np.sort(rng.uniform(0, duration - 0.5, n_words))
    words = [
        Word(float(s), float(s + rng.uniform(0.08, 0.5)), f"w{i}") for i, s in enumerate(starts)
    ]
    return words, segments


def merge(words: list[Word], segments: list[SpeakerSegment]) -> int:
    return len(turns_from_assignment(assign(words, segments)))


def baseline_merge(words: list[Word], segments: list[SpeakerSegment]) -> int:
    seg_start = np.array([s.start for s in segments])
    seg_end = np.array([s.end for s in segments])
    labels = [s.speaker for s in segments]
    out = []
    for w in words:
        inter = np.minimum(seg_end, w.end) - np.maximum(seg_start, w.start)
        out.append(labels[int(np.argmax(inter))])
    return len(out)


def fingerprints(
    n_chunks: int = 500, per_chunk: int = 4, voices: int = 40, seed: int = 1
) -> list[LocalSpeaker]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((voices, 192))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    speakers = []
    for chunk in range(n_chunks):
        for n, v in enumerate(rng.choice(voices, size=per_chunk, replace=False)):
            vec = centres[v] + rng.standard_normal(192) * 0.5 / np.sqrt(
                192
            )  # cosine ~0.9 to the voice
            speakers.append(
                LocalSpeaker(
                    chunk, f"Speaker_{n}", vec, float(rng.uniform(1, 60)), chunk * 300.0 + n
                )
            )
    return speakers


def baseline_link(speakers: list[LocalSpeaker]) -> int:
    vectors = np.stack([s.fingerprint for s in speakers if s.fingerprint is not None])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = fcluster(linkage(vectors, method="average", metric="cosine"), 0.5, "distance")
    return int(labels.max())


def timed(work: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds (the CPU figure is what a shared box cannot inflate)."""
    walls, cpus = [], []
    for _ in range(repeat):
        started, cpu = time.perf_counter(), time.thread_time()
        work()
        walls.append(time.perf_counter() - started)
        cpus.append(time.thread_time() - cpu)
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    words, segments = meeting()
    (ours, ours_cpu) = timed(lambda: merge(words, segments), args.repeat)
    (base, base_cpu) = timed(lambda: baseline_merge(words, segments), max(args.repeat // 3, 1))
    print(
        f"merge 30,000 words / 3,000 segments: {ours:.1f} ms wall, {ours_cpu:.1f} ms CPU "
        f"(median; goal <= 50 ms); per-word numpy scan baseline {base:.1f} ms wall, "
        f"{base_cpu:.1f} ms CPU; ratio {ours_cpu / base_cpu:.3f}"
    )
    speakers = fingerprints()
    linked = link_speakers(speakers, threshold=0.5)
    (ours, ours_cpu) = timed(lambda: link_speakers(speakers, threshold=0.5), args.repeat)
    (base, base_cpu) = timed(lambda: baseline_link(speakers), args.repeat)
    print(
        f"link 2,000 fingerprints: {ours:.1f} ms wall, {ours_cpu:.1f} ms CPU (median; goal "
        f"<= 200 ms), {len(set(linked.values()))} speakers found of 40; plain scipy AHC "
        f"(pdist) baseline {base:.1f} ms wall, {base_cpu:.1f} ms CPU; "
        f"ratio {ours_cpu / base_cpu:.2f}"
    )


if __name__ == "__main__":
    main()
