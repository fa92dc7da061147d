"""Choose the simulated diarizer's thresholds for a speaker encoder, on the tuning voices only.

    .venv/bin/python benchmarks/sim_diarizer_tuning.py [--encoder campplus|ge2e]

The conversations are benchmarks/eval_diarization.py's TUNING_CASES (same voices, seeds and
keep-back), cut into the gateway's first-pass chunks (120 s at silences). Each chunk's speech
windows are embedded once (`tests/sim/diarization.py` embed_speech); then, for every pair of
thresholds in the encoder's grid, with and without smoothing each window with its neighbours,
the diarizer's own clustering runs on those embeddings and is
scored against the true turns:

- wrong windows: share of 0.8 s speech windows whose speaker is not the true one, after the
  best one-to-one mapping of found to true speakers in each chunk (a window counts when turns
  cover at least half of it; its true speaker is the one covering most of it);
- speakers too many / too few, summed over chunks, against the people with at least
  MIN_SPEAKER_S of such windows in the chunk (at most four, the diarizer's slots).

The setting with the fewest wrong windows wins, then the fewest count errors. With it, the activity
logistic is set from the windows' similarity to the centroid of the speaker they were mapped to
(10th percentile) and to the other speakers' centroids (90th percentile): the centre midway, the
slope putting those two at 0.65 and 0.35 (GE2E's 25 follows the same rule). It prints the table
and the chosen values for tests/sim/diarization.py ENCODERS. For an encoder that clusters by
NME-SC (CAM++), which has no distance threshold, the grid is only the comparison: it then prints
NME-SC's score when it counts up to 4-12 speakers per chunk (NeMo's default, 8, is in use).
`--match-ge2e` instead fits the logistic so that the encoder's own-speaker windows get GE2E's
confidences at the 10th percentile and the median, which is what CAM++ uses: the gateway's
thresholds were chosen on GE2E's.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "addon"), str(ROOT / "benchmarks")]

from eval_diarization import KEEP_BACK, TUNING_CASES  # noqa: E402

from spark_gateway.speakers.chunking import slice_samples  # noqa: E402
from spark_gateway.speakers.pipeline import SAMPLE_RATE, SpeakerOptions, first_plan  # noqa: E402
from tests.sim.diarization import (  # noqa: E402
    ENCODERS,
    MAX_SPEAKERS,
    MIN_SPEAKER_S,
    NME_MAX_SPEAKERS,
    WINDOW_S,
    EncoderProfile,
    SpeechWindows,
    cluster_windows,
    embed_speech,
)
from tests.speakers.voices import build_conversation  # noqa: E402

# Cosine distances tried: first pass between windows x merging pass between centroids.
GRIDS = {
    "ge2e": ([0.15, 0.2, 0.25, 0.3, 0.35], [0.08, 0.1, 0.12, 0.15, 0.2]),
    "campplus": ([0.3, 0.4, 0.5, 0.6, 0.7, 0.8], [0.2, 0.3, 0.4, 0.5, 0.6, 0.7]),
}
ACTIVITY_AT_PERCENTILES = 0.65  # own 10th percentile → 0.65, others' 90th → 0.35


def chunk_windows(encoder: str) -> list[tuple[SpeechWindows, list[str | None]]]:
    """Every tuning chunk's embedded speech windows and each window's true speaker."""
    profile = ENCODERS[encoder]
    out = []
    for n, (voices, minutes) in enumerate(TUNING_CASES):
        conversation = build_conversation(voices, duration_s=minutes * 60, seed=100 + n,
                                          keep_back=KEEP_BACK)  # fmt: skip
        for chunk in first_plan(conversation.samples, SpeakerOptions()):
            samples = slice_samples(conversation.samples, SAMPLE_RATE, chunk)
            windows = embed_speech(samples.astype(np.float32) / 32768, profile)
            truth = []
            for i in windows.idx:
                lo, hi = chunk.start_s + i * WINDOW_S, chunk.start_s + (i + 1) * WINDOW_S
                cover: dict[str, float] = {}
                for turn in conversation.turns:
                    inter = min(hi, turn.end) - max(lo, turn.start)
                    if inter > 0:
                        cover[turn.speaker] = cover.get(turn.speaker, 0.0) + inter
                best = max(cover, key=lambda k: cover[k], default=None)
                truth.append(best if best and sum(cover.values()) >= WINDOW_S / 2 else None)
            out.append((windows, truth))
    return out


def mapping(labels: np.ndarray, truth: list[str | None]) -> dict[int, str]:
    """Found speaker → true speaker, one to one, maximising the windows they share."""
    people = sorted({t for t in truth if t is not None})
    found = sorted({int(k) for k in labels})
    shared = np.zeros((len(found), len(people)))
    for k, t in zip(labels, truth, strict=True):
        if t is not None:
            shared[found.index(int(k)), people.index(t)] += 1
    rows, cols = linear_sum_assignment(-shared)
    return {found[r]: people[c] for r, c in zip(rows, cols, strict=True)}


def score(chunks: list[tuple[SpeechWindows, list[str | None]]], encoder: str, smooth: bool,
          window_t: float, centroid_t: float) -> tuple[float, int, int, float]:  # fmt: skip
    """Wrong windows (share), speakers too many, too few, and wrong windows in chunks of at
    most four people (share of their windows), clustering by average linkage."""
    profile = replace(ENCODERS[encoder], window_threshold=window_t, centroid_threshold=centroid_t,
                      smooth=smooth, clustering="ahc")  # fmt: skip
    return score_profile(chunks, profile)


def score_profile(
    chunks: list[tuple[SpeechWindows, list[str | None]]],
    profile: EncoderProfile,
    max_counted: int = NME_MAX_SPEAKERS,
) -> tuple[float, int, int, float]:
    """score() for any clustering the profile names."""
    wrong = total = too_many = too_few = wrong_few = total_few = 0
    min_windows = math.ceil(MIN_SPEAKER_S / WINDOW_S)
    for windows, truth in chunks:
        if not windows.idx:
            continue
        _, labels = cluster_windows(windows, profile, max_counted=max_counted)
        to_true = mapping(labels, truth)
        counted = [(int(k), t) for k, t in zip(labels, truth, strict=True) if t is not None]
        total += len(counted)
        wrong += sum(to_true.get(k) != t for k, t in counted)
        people = {t: sum(1 for _, u in counted if u == t) for _, t in counted}
        expected = min(sum(n >= min_windows for n in people.values()), MAX_SPEAKERS)
        if len(people) <= MAX_SPEAKERS:
            total_few += len(counted)
            wrong_few += sum(to_true.get(k) != t for k, t in counted)
        found = len(set(labels.tolist()))
        too_many += max(found - expected, 0)
        too_few += max(expected - found, 0)
    return wrong / max(total, 1), too_many, too_few, wrong_few / max(total_few, 1)


def similarities(chunks: list[tuple[SpeechWindows, list[str | None]]], profile: EncoderProfile
                 ) -> tuple[list[float], list[float]]:  # fmt: skip
    """Each window's similarity to the centroid of its own speaker's cluster, and to the others'."""
    own: list[float] = []
    others: list[float] = []
    for windows, truth in chunks:
        if not windows.idx:
            continue
        vectors, labels = cluster_windows(windows, profile)
        centroids = np.stack([vectors[labels == k].mean(axis=0) for k in range(labels.max() + 1)])
        centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
        of_person = {t: k for k, t in mapping(labels, truth).items()}
        sims = vectors @ centroids.T
        for j, t in enumerate(truth):
            if t is not None and t in of_person:
                own.append(float(sims[j, of_person[t]]))
                others.extend(np.delete(sims[j], of_person[t]).tolist())
    return own, others


def activity(chunks: list[tuple[SpeechWindows, list[str | None]]], encoder: str, smooth: bool,
             window_t: float, centroid_t: float) -> tuple[float, float, float, float]:  # fmt: skip
    """Own 10th percentile, others' 90th, and the centre and slope they give."""
    profile = replace(ENCODERS[encoder], window_threshold=window_t, centroid_threshold=centroid_t,
                      smooth=smooth, clustering="ahc")  # fmt: skip
    return activity_of(chunks, profile)


def activity_of(chunks: list[tuple[SpeechWindows, list[str | None]]], profile: EncoderProfile
                ) -> tuple[float, float, float, float]:  # fmt: skip
    """activity() for any profile."""
    own, others = similarities(chunks, profile)
    p_own, p_other = float(np.percentile(own, 10)), float(np.percentile(others, 90))
    logit = math.log(ACTIVITY_AT_PERCENTILES / (1 - ACTIVITY_AT_PERCENTILES))
    return p_own, p_other, (p_own + p_other) / 2, 2 * logit / max(p_own - p_other, 1e-6)


def match_ge2e(encoder: str) -> None:
    """The activity logistic that gives `encoder`'s own-speaker windows GE2E's confidences at
    the 10th percentile and the median: the gateway's thresholds were chosen on GE2E's."""
    ge2e = ENCODERS["ge2e"]
    ours = np.asarray(similarities(chunk_windows(encoder), ENCODERS[encoder])[0])
    theirs = np.asarray(similarities(chunk_windows("ge2e"), ge2e)[0])
    logits = []
    for q in (10, 50):
        confidence = 1 / (
            1 + math.exp(-ge2e.activity_slope * (np.percentile(theirs, q) - ge2e.activity_centre))
        )
        logits.append(math.log(confidence / (1 - confidence)))
    p10, p50 = float(np.percentile(ours, 10)), float(np.percentile(ours, 50))
    slope = (logits[1] - logits[0]) / (p50 - p10)
    print(
        f"{encoder} own 10th percentile {p10:.3f}, median {p50:.3f} (GE2E "
        f"{np.percentile(theirs, 10):.3f}, {np.percentile(theirs, 50):.3f}) -> "
        f"activity_centre={p10 - logits[0] / slope:.3f}, activity_slope={slope:.2f}"
    )


def nme_sc(chunks: list[tuple[SpeechWindows, list[str | None]]], encoder: str,
           best_ahc: tuple[bool, float, float]) -> None:  # fmt: skip
    """NME-SC has no distance threshold; its settings are NeMo's defaults. Show that the tuning
    voices agree with counting up to NME_MAX_SPEAKERS, then the activity logistic for it."""
    profile = ENCODERS[encoder]
    print(f"\nNME-SC (smooth={profile.smooth}), speakers counted up to:")
    print("counted  wrong windows  (<= 4 people)  too many  too few")
    for counted in (4, 6, 8, 10, 12):
        wrong, many, few, wrong_few = score_profile(chunks, profile, counted)
        mark = "  (in use)" if counted == NME_MAX_SPEAKERS else ""
        print(f"{counted:7d}  {100 * wrong:12.1f} %  {100 * wrong_few:11.1f} %  {many:8d}  "
              f"{few:7d}{mark}")  # fmt: skip
    print(f"(the best average linkage above: smooth={best_ahc[0]}, {best_ahc[1]} / {best_ahc[2]})")
    p_own, p_other, centre, slope = activity_of(chunks, profile)
    print(f"activity by the percentile rule: own 10th percentile {p_own:.3f}, others' 90th "
          f"{p_other:.3f} -> centre {centre:.3f}, slope {slope:.1f} (used: --match-ge2e)"
          )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoder", choices=sorted(GRIDS), default="campplus")
    parser.add_argument(
        "--match-ge2e",
        action="store_true",
        help="only the activity logistic matched to GE2E's confidences",
    )
    args = parser.parse_args()
    encoder = args.encoder
    if args.match_ge2e:
        match_ge2e(encoder)
        return
    started = time.process_time()
    chunks = chunk_windows(encoder)
    n_windows = sum(len(w.idx) for w, _ in chunks)
    print(f"{encoder}: {len(chunks)} tuning chunks, {n_windows} speech windows embedded in "
          f"{time.process_time() - started:.0f} s CPU")  # fmt: skip
    window_grid, centroid_grid = GRIDS[encoder]
    print("smooth  window  centroid  wrong windows  (<= 4 people)  too many  too few")
    results = {}
    for smooth in (True, False):
        for window_t in window_grid:
            for centroid_t in centroid_grid:
                key = (smooth, window_t, centroid_t)
                results[key] = score(chunks, encoder, *key)
                wrong, many, few, wrong_few = results[key]
                print(f"{smooth!s:6}  {window_t:6.2f}  {centroid_t:8.2f}  {100 * wrong:12.1f} %  "
                      f"{100 * wrong_few:11.1f} %  {many:8d}  {few:7d}")  # fmt: skip
    best = min(results, key=lambda k: (round(results[k][0], 3), results[k][1] + results[k][2]))
    wrong, many, few, wrong_few = results[best]
    if ENCODERS[encoder].clustering == "nme-sc":
        nme_sc(chunks, encoder, best)
        return
    p_own, p_other, centre, slope = activity(chunks, encoder, *best)
    print(f"\nchosen: smooth={best[0]}, window_threshold={best[1]}, centroid_threshold={best[2]}: "
          f"{100 * wrong:.1f} % wrong windows ({100 * wrong_few:.1f} % in chunks of at most four "
          f"people), {many} too many, {few} too few over {len(chunks)} chunks")  # fmt: skip
    print(f"activity: own 10th percentile {p_own:.3f}, others' 90th {p_other:.3f} -> "
          f"activity_centre={centre:.3f}, activity_slope={slope:.1f}")  # fmt: skip
    print(f"total {time.process_time() - started:.0f} s CPU")


if __name__ == "__main__":
    main()
