"""Quality of speaker-attributed transcription: DER, JER, word diarization error, speaker count.

    .venv/bin/python benchmarks/eval_diarization.py [--quick] [--skip-long] [--thresholds ...]

Two evaluations on conversations with exactly known turns:

1. **Merge alone** (`spark_gateway.speakers` assignment + turns): reference turns of 2-6
   speakers over 2-60 minutes; words placed inside the turns on Parakeet's 80 ms grid; the
   diarization given is the true segments with every boundary moved by up to ±80 ms. Goal:
   word diarization error (WDER) ≤ 2 %.
2. **Long-audio path** (`spark_gateway.speakers.pipeline`, chunking + linking + merge): real
   recorded voices (tests/speakers/data/voices, 12 speakers) joined into conversations of
   2-6 speakers and 2-60 minutes, cut into chunks, each chunk diarized by the simulator's
   `/v1/audio/diarize-chunk` over HTTP (real d-vector encoder), speakers linked by fingerprint.
   Transcription is an oracle (the reference words of each chunk), so the figures measure
   diarization and linking, not pocketsphinx. Goal: the exact speaker count on every one.
   The link threshold is swept on the same chunk answers (cached), which is how the default
   was chosen.

Metrics: pyannote.metrics DER with collar 0.5 (±0.25 s around each boundary, NIST style) and
overlap scored, JER, WDER (words whose mapped speaker is wrong / all words, optimal mapping),
speaker-count error. Corpus values, not means of per-file values.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "addon"))
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from pyannote.core import Annotation, Segment  # noqa: E402
from pyannote.metrics.diarization import (  # noqa: E402
    DiarizationErrorRate,
    JaccardErrorRate,
)

from spark_gateway.audio_codec import wav_to_pcm  # noqa: E402
from spark_gateway.speakers.assignment import assign_speakers  # noqa: E402
from spark_gateway.speakers.chunking import (  # noqa: E402
    DEFAULT_CHUNK_S,
    plan_chunks,
    slice_samples,
)
from spark_gateway.speakers.pipeline import (  # noqa: E402
    SAMPLE_RATE,
    SpeakerOptions,
    transcribe_with_speakers,
)
from spark_gateway.speakers.records import SpeakerSegment, Word  # noqa: E402
from spark_gateway.speakers.turns import build_turns  # noqa: E402
from tests.speakers.voices import Conversation, RefTurn, build_conversation  # noqa: E402

warnings.filterwarnings("ignore", category=UserWarning, module="pyannote")

# Voices that are far apart for the simulator's encoder come first (docs/diarization.md).
LONG_VOICES = ["FEE083", "MEE009", "FEE078", "MEO069", "MEE012", "FEO072"]
MERGE_CASES = [(2, 2), (3, 10), (4, 20), (5, 45), (6, 60)]  # (speakers, minutes)
LONG_CASES = [(2, 2), (3, 10), (4, 20), (2, 60), (5, 30), (6, 15)]
QUICK_LONG = [(2, 2), (3, 6)]


@dataclass
class Scores:
    der: DiarizationErrorRate
    jer: JaccardErrorRate
    words: int = 0
    wrong_words: int = 0
    count_errors: int = 0
    files: int = 0

    @classmethod
    def new(cls) -> Scores:
        return cls(DiarizationErrorRate(collar=0.5, skip_overlap=False), JaccardErrorRate())

    @property
    def wder(self) -> float:
        return self.wrong_words / self.words if self.words else 0.0


def annotation(turns: Iterable[tuple[float, float, str]]) -> Annotation:
    ann = Annotation()
    for n, (start, end, speaker) in enumerate(turns):
        if end > start:
            ann[Segment(start, end), n] = speaker
    return ann


def reference_words(turns: Sequence[RefTurn], seed: int) -> list[tuple[Word, str]]:
    """Words inside each reference turn, on Parakeet's 80 ms grid, with their true speaker."""
    rng = np.random.default_rng(seed)
    words: list[tuple[Word, str]] = []
    for turn in turns:
        t = turn.start + rng.uniform(0.0, 0.16)
        while True:
            length = rng.uniform(0.16, 0.56)
            start, end = round(t / 0.08) * 0.08, round((t + length) / 0.08) * 0.08
            if end > turn.end:
                break
            words.append((Word(start, max(end, start), f"w{len(words)}"), turn.speaker))
            t = end + rng.uniform(0.0, 0.24)
    return words


def score(
    scores: Scores,
    ref_turns: Sequence[RefTurn],
    hyp_segments: Sequence[SpeakerSegment],
    truth: dict[str, str],
    hyp_words: dict[str, str],
    duration: float,
) -> None:
    ref = annotation((t.start, t.end, t.speaker) for t in ref_turns)
    hyp = annotation((s.start, s.end, s.speaker) for s in hyp_segments)
    uem = Segment(0.0, duration)
    from pyannote.core import Timeline

    scores.der(ref, hyp, uem=Timeline([uem]))
    scores.jer(ref, hyp, uem=Timeline([uem]))
    # WDER under the optimal one-to-one speaker mapping of the words.
    refs = sorted(set(truth.values()))
    hyps = sorted(set(hyp_words.values()))
    counts = np.zeros((len(refs), max(len(hyps), 1)))
    for word, speaker in truth.items():
        if word in hyp_words:
            counts[refs.index(speaker), hyps.index(hyp_words[word])] += 1
    rows, cols = linear_sum_assignment(-counts)
    correct = counts[rows, cols].sum()
    scores.words += len(truth)
    scores.wrong_words += int(len(truth) - correct)
    scores.files += 1
    scores.count_errors += int(len(hyps) != len(refs))


def report(title: str, scores: Scores) -> None:
    print(
        f"{title}: files={scores.files} DER={100 * abs(scores.der):.2f}% "
        f"JER={100 * abs(scores.jer):.2f}% WDER={100 * scores.wder:.2f}% "
        f"({scores.wrong_words}/{scores.words} words) "
        f"speaker-count errors={scores.count_errors}/{scores.files}"
    )


# -- 1. merge alone ----------------------------------------------------------------------


def synthetic_turns(n_speakers: int, minutes: float, seed: int) -> list[RefTurn]:
    rng = np.random.default_rng(seed)
    turns, t, previous = [], 0.0, None
    names = [f"S{k}" for k in range(n_speakers)]
    while t < minutes * 60:
        choices = (
            [s for s in names if s != previous] if len(turns) >= n_speakers else [names[len(turns)]]
        )
        speaker = choices[int(rng.integers(len(choices)))]
        length = rng.uniform(1.0, 12.0)
        # Some turns start before the previous ends (overlap), most after a pause.
        start = t - rng.uniform(0.0, 0.4) if turns and rng.random() < 0.15 else t
        turns.append(RefTurn(max(start, 0.0), start + length, speaker))
        t = start + length + rng.uniform(0.1, 1.2)
        previous = speaker
    return turns


def evaluate_merge(jitter_s: float = 0.08) -> Scores:
    scores = Scores.new()
    rng = np.random.default_rng(5)
    elapsed = 0.0
    for n, (speakers, minutes) in enumerate(MERGE_CASES):
        turns = synthetic_turns(speakers, minutes, seed=n)
        words = reference_words(turns, seed=n)
        segments = [
            SpeakerSegment(
                t.start + rng.uniform(-jitter_s, jitter_s),
                t.end + rng.uniform(-jitter_s, jitter_s),
                t.speaker,
                0.9,
            )
            for t in turns
        ]
        started = time.perf_counter()
        attributed = assign_speakers([w for w, _ in words], segments)
        merged = build_turns(attributed)
        elapsed += time.perf_counter() - started
        hyp_words = {a.word.text: a.speaker for a in attributed}
        hyp_segments = [SpeakerSegment(t.start, t.end, t.speaker) for t in merged]
        truth = {w.text: speaker for w, speaker in words}
        score(scores, turns, hyp_segments, truth, hyp_words, turns[-1].end)
    print(f"merge time for all {len(MERGE_CASES)} files: {elapsed * 1000:.1f} ms")
    return scores


# -- 2. long-audio path ---------------------------------------------------------------------


class OracleAsrSimDiarizer:
    """The pipeline's upstream: diarize-chunk from the simulator (cached), oracle words."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        parakeet_url: str,
        conversation: Conversation,
        words: list[tuple[Word, str]],
        options: SpeakerOptions,
    ) -> None:
        self.session = session
        self.url = parakeet_url
        self.words = [w for w, _ in words]
        self.chunks = plan_chunks(
            conversation.samples, SAMPLE_RATE, chunk_s=options.chunk_s, overlap_s=options.overlap_s
        )
        self.by_span = {
            (
                len(slice_samples(conversation.samples, SAMPLE_RATE, c)),
                int(
                    slice_samples(conversation.samples, SAMPLE_RATE, c)[:4000]
                    .astype(np.int64)
                    .sum()
                ),
            ): c
            for c in self.chunks
        }
        self.cache: dict[int, dict[str, Any]] = {}
        self.upstream_seconds = 0.0

    def _chunk(self, wav: bytes) -> Any:
        samples, _ = wav_to_pcm(wav)
        return self.by_span[(len(samples), int(samples[:4000].astype(np.int64).sum()))]

    async def transcribe(self, wav: bytes, **_: Any) -> dict[str, Any]:
        chunk = self._chunk(wav)
        inside = [w for w in self.words if chunk.start_s <= (w.start + w.end) / 2 < chunk.end_s]
        return {
            "text": " ".join(w.text for w in inside),
            "language": "en",
            "words": [
                {"word": w.text, "start": w.start - chunk.start_s, "end": w.end - chunk.start_s}
                for w in inside
            ],
        }

    async def diarize(self, wav: bytes) -> dict[str, Any]:
        raise AssertionError("the long path only calls diarize_chunk")

    async def diarize_chunk(self, wav: bytes) -> dict[str, Any]:
        chunk = self._chunk(wav)
        if chunk.index not in self.cache:
            form = aiohttp.FormData()
            form.add_field("file", wav, filename="chunk.wav", content_type="audio/wav")
            started = time.perf_counter()
            async with self.session.post(self.url + "/v1/audio/diarize-chunk", data=form) as resp:
                resp.raise_for_status()
                self.cache[chunk.index] = await resp.json()
            self.upstream_seconds += time.perf_counter() - started
        return self.cache[chunk.index]


async def evaluate_long(
    cases: list[tuple[int, float]], thresholds: list[float], chunk_s: float
) -> dict[float, Scores]:
    from tests.sim import SimCluster, SimConfig

    results = {th: Scores.new() for th in thresholds}
    async with SimCluster(SimConfig(nodes=1)) as sim, aiohttp.ClientSession() as session:
        for n, (speakers, minutes) in enumerate(cases):
            conversation = build_conversation(
                LONG_VOICES[:speakers], duration_s=minutes * 60, seed=100 + n
            )
            words = reference_words(conversation.turns, seed=200 + n)
            base = SpeakerOptions(long_audio_threshold_s=0.0, chunk_s=chunk_s)
            upstream = OracleAsrSimDiarizer(session, sim.parakeet.url, conversation, words, base)
            counts = []
            for th in thresholds:
                options = SpeakerOptions(
                    long_audio_threshold_s=0.0, chunk_s=chunk_s, link_threshold=th
                )
                result = await transcribe_with_speakers(
                    upstream, conversation.samples, options=options
                )
                hyp_words = {word.text: speaker for word, speaker in _attributed(result)}
                truth = {w.text: speaker for w, speaker in words}
                score(
                    results[th],
                    conversation.turns,
                    result.segments,
                    truth,
                    hyp_words,
                    conversation.duration,
                )
                counts.append(len(result.speakers))
            print(
                f"  {speakers} speakers, {minutes:g} min, {len(upstream.chunks)} chunks, "
                f"diarize-chunk {upstream.upstream_seconds:.1f} s; speakers found per "
                f"threshold {dict(zip(thresholds, counts, strict=True))}",
                flush=True,
            )
    return results


def _attributed(result: Any) -> list[tuple[Word, str]]:
    # Re-run the assignment on the merged segments: the words' speakers as the turns carry them.
    return [(a.word, a.speaker) for a in assign_speakers(result.words, result.segments)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="two short long-path files")
    parser.add_argument("--skip-long", action="store_true")
    parser.add_argument("--chunk-s", type=float, default=DEFAULT_CHUNK_S)
    parser.add_argument("--cases", nargs="+", help="long-path cases as SPEAKERSxMINUTES, e.g. 2x60")
    parser.add_argument(
        "--thresholds", type=float, nargs="+", default=[0.2, 0.3, 0.35, 0.4, 0.5, 0.6]
    )
    args = parser.parse_args()
    report("merge alone (true segments ±80 ms)", evaluate_merge())
    if args.skip_long:
        return
    cases = QUICK_LONG if args.quick else LONG_CASES
    if args.cases:
        cases = [(int(c.split("x")[0]), float(c.split("x")[1])) for c in args.cases]
    print(f"long-audio path (simulator diarize-chunk, oracle words, chunks of {args.chunk_s:g} s):")
    results = asyncio.run(evaluate_long(cases, args.thresholds, args.chunk_s))
    for th, scores in results.items():
        report(f"  link threshold {th:.2f}", scores)


if __name__ == "__main__":
    main()
