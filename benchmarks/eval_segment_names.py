"""Names per diarizer segment: would naming each segment by its own voice print lift enrolled
speech named right past what naming whole slots can reach?

    .venv/bin/python benchmarks/eval_segment_names.py --cache .cache/diar-campplus.json

A measurement for a design not built yet (docs/diarization.md, "Names per segment"). The
gateway names a local speaker (a diarizer slot of one piece) by the slot's print, so where the
diarizer folded a fifth person into someone's slot, that person's speech carries the slot
owner's name: the ceiling of the main evaluation. Here every segment of at least `min_s`
seconds gets a print of its own (the mean of the simulator's window embeddings inside it, made
the way the simulator makes a slot's print) and shows the enrolled name it matches closer
than the segment threshold, whatever its slot was named; other segments keep the gateway's
answer. Everything else is `benchmarks/eval_diarization.py` with the thresholds its tuning chose
for CAM++ (link 0.30, re-join 0.30, `?` below 0.5, names 0.35, confirm +0.30).

The settings are chosen on the tuning voices: the lowest `min_s` and the widest threshold that
add at most one point of strangers' speech named over slot naming (the main evaluation's rule
for the confirm margin), then reported on the held-out voices. The window embeddings of each
conversation are computed once (14-25 min on the two shared cores) and kept beside `--cache`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import eval_diarization as ev

from tests.sim import diarization as sim

ENCODER = "campplus"
CHOSEN = ev.SpeakerOptions(
    min_piece_s=30.0, split_distance=0.55, link_threshold=0.30, rejoin_threshold=0.30,
    low_confidence=0.5, name_threshold=0.35, confirm_margin=0.30,
)  # fmt: skip
MIN_SECONDS = (1.0, 1.6, 2.4)
THRESHOLDS = (0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55)
STRANGERS_ADDED = 0.01  # at most this share of strangers' speech newly named


@dataclass(frozen=True)
class SegmentPrint:
    start: float
    end: float
    vector: np.ndarray  # unit


class Windows:
    """Each conversation's 0.8 s speech windows and their embeddings, kept in an .npz file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.saved: dict[str, np.ndarray] = dict(np.load(path)) if path.exists() else {}

    def of(self, rec: ev.Recording) -> tuple[np.ndarray, np.ndarray]:
        key = rec.name.replace(" ", "_")
        if f"{key}.idx" not in self.saved:
            samples = rec.conversation.samples.astype(np.float32) / 32768.0
            found = sim.embed_speech(samples, sim.ENCODERS[ENCODER])
            self.saved[f"{key}.idx"] = np.asarray(found.idx, dtype=np.int64)
            self.saved[f"{key}.raw"] = found.raw
            np.savez(self.path, **self.saved)  # type: ignore[arg-type]
            print(f"  embedded {rec.name}: {len(found.idx)} windows", flush=True)
        return self.saved[f"{key}.idx"], self.saved[f"{key}.raw"]


def segment_prints(rec: ev.Recording, windows: Windows, min_s: float) -> list[SegmentPrint]:
    """A print for every owned segment of at least `min_s` from the windows inside it."""
    idx, raw = windows.of(rec)
    starts, ends = idx * sim.WINDOW_S, (idx + 1) * sim.WINDOW_S
    out = []
    for chunk, diarization in zip(rec.chunks, rec.diarizations, strict=True):
        for seg in diarization.segments:
            start = max(seg.start + chunk.start_s, chunk.own_start_s)
            end = min(seg.end + chunk.start_s, chunk.own_end_s)
            inside = (starts >= start - 1e-6) & (ends <= end + 1e-6)
            if end - start >= min_s and inside.any():
                vector = np.asarray(sim.to_fingerprint(raw[inside]))
                out.append(SegmentPrint(start, end, vector / np.linalg.norm(vector)))
    return out


def shares(recs: list[ev.Recording], prints: list[ev.Voiceprint], windows: Windows,
           setting: tuple[float, float] | None) -> tuple[float, float]:  # fmt: skip
    """(enrolled speech named right, strangers' speech named); `setting` (min_s, threshold)
    names segments by their own prints, None leaves the gateway's slot names."""
    names = np.array([p.name for p in prints], dtype=object)
    matrix = np.stack([p.vector for p in prints])
    right = enrolled = named = strangers = 0
    for rec in recs:
        n = int(rec.conversation.duration / ev.NAME_FRAME_S) + 1
        truth = ev._frames(((t.start, t.end, t.speaker) for t in rec.conversation.turns), n)
        ours = ev.run(rec, CHOSEN, voiceprints=prints).segments
        shown = ev._frames(((s.start, s.end, s.speaker) for s in ours), n)
        if setting is not None:
            min_s, threshold = setting
            for seg in segment_prints(rec, windows, min_s):
                distance = 1.0 - matrix @ seg.vector
                if distance.min() <= threshold:
                    frames = slice(int(seg.start / ev.NAME_FRAME_S), int(seg.end / ev.NAME_FRAME_S))
                    shown[frames] = names[int(distance.argmin())]
        is_enrolled = np.isin(truth, names)
        is_stranger = (truth != "") & ~is_enrolled
        enrolled += int(is_enrolled.sum())
        right += int((is_enrolled & (shown == truth)).sum())
        strangers += int(is_stranger.sum())
        named += int((is_stranger & np.isin(shown, names)).sum())
    return right / enrolled, named / strangers


Prepared = tuple[
    list[ev.Recording], list[ev.Recording], list[ev.Voiceprint], dict[str, list[ev.Voiceprint]]
]


async def prepared(cache: Path | None) -> Prepared:
    """Both voice sets diarized (from the cache when it holds them) and the people enrolled."""
    from tests.sim import SimCluster, SimConfig

    config = SimConfig(nodes=1, speaker_encoder=ENCODER)
    async with SimCluster(config) as cluster, aiohttp.ClientSession() as session:
        diarizer = ev.SimDiarizer(session, cluster.parakeet.url, cache, ENCODER)
        tuning = await ev.prepare(diarizer, ev.TUNING_CASES, "tuning", CHOSEN)
        heldout = await ev.prepare(diarizer, ev.HELDOUT_CASES, "held-out", CHOSEN)
        tuning_prints = await ev.enrol(diarizer, ev.TUNING_ENROLLED)
        heldout_prints = {title: await ev.enrol(diarizer, voices)
                          for title, voices in ev.HELDOUT_ENROLLED.items()}  # fmt: skip
        diarizer.save()
    return tuning, heldout, tuning_prints, heldout_prints


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, help="eval_diarization.py's --cache file (CAM++)")
    args = parser.parse_args()
    tuning, heldout, tuning_prints, heldout_prints = asyncio.run(prepared(args.cache))
    windows = Windows((args.cache or Path(".cache/diar.json")).with_suffix(".windows.npz"))
    for rec in tuning + heldout:
        windows.of(rec)
    base_right, base_named = shares(tuning, tuning_prints, windows, None)
    print(f"tuning, slot names: right {base_right:.1%}, strangers named {base_named:.1%}")
    chosen: tuple[float, float] | None = None
    best = base_right
    for min_s in MIN_SECONDS:
        for threshold in THRESHOLDS:
            right, named = shares(tuning, tuning_prints, windows, (min_s, threshold))
            print(f"  tuning, segments of {min_s:g} s or more named within {threshold:.2f}: "
                  f"right {right:.1%}, strangers named {named:.1%}", flush=True)  # fmt: skip
            if named - base_named <= STRANGERS_ADDED and right > best:
                chosen, best = (min_s, threshold), right
    print(f"chosen on tuning (segments, threshold): {chosen}")
    for title, prints in heldout_prints.items():
        for label, setting in (("slot names", None), ("segment names", chosen)):
            right, named = shares(heldout, prints, windows, setting)
            print(f"held-out, {title}, {label}: enrolled speech named right {right:.1%} (target "
                  f">= 95%), strangers' speech named {named:.1%} (target <= 2%)")  # fmt: skip


if __name__ == "__main__":
    main()
