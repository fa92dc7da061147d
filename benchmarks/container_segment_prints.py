"""Cost of the per-segment voice prints of the speech container's `/v1/audio/diarize-chunk`.

    bash -c 'source scripts/_nemo_env.sh && "$NEMO_PYTHON" \
        benchmarks/container_segment_prints.py [--chunk-s 120] [--segments 40] [--repeat 3]'

(in the NeMo test env of scripts/test_nemo: Python 3.11, torch CPU, the pinned NeMo.)

A chunk of `--chunk-s` seconds is cut into `--segments` back-to-back segments of random
lengths (each at least 1 s, so each gets a print). The container's own code prints them
(`SpeechEngine._print_segments`: one TitaNet `infer_segment` per segment) with TitaNet-large
at its released size (NeMo's recipe, tests/container/nemo/conf/titanet_large.yaml, random
weights: the time does not depend on them). Measured in the same run:
- the direct baseline: one `infer_segment` over the same audio (all of it) in one call, about
  what the speaker prints of a chunk cost at most (one pass per speaker over its clean speech,
  at most 30 s each);
- one batched `forward` over all segments, zero-padded, to tell what batching would save.
This machine has no GPU: the figures are CPU seconds and ratios, not GPU figures.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "parakeet_container"))

from parakeet_server.audio import SAMPLE_RATE  # noqa: E402
from parakeet_server.config import ServerConfig  # noqa: E402
from parakeet_server.diarization import Segment  # noqa: E402
from parakeet_server.engine import SpeechEngine  # noqa: E402
from parakeet_server.models import Loaders, ModelRegistry  # noqa: E402

TITANET_RECIPE = ROOT / "tests/container/nemo/conf/titanet_large.yaml"


def titanet_large() -> Any:
    """TitaNet-large as NeMo's recipe builds it (192-dim embedding), in eval mode."""
    from nemo.collections.asr.models import EncDecSpeakerLabelModel
    from omegaconf import OmegaConf

    root = OmegaConf.load(TITANET_RECIPE)
    model = root.model
    for key in ("train_ds", "validation_ds", "test_ds"):  # no data, as in a released checkpoint
        if key in model:
            model[key].manifest_filepath = None
            model[key].pop("augmentor", None)
    OmegaConf.resolve(root)
    titanet = EncDecSpeakerLabelModel(cfg=model)
    titanet.eval()
    return titanet


def chunk_and_segments(chunk_s: float, n: int, seed: int) -> tuple[np.ndarray, list[Segment]]:
    """Speech-like noise and `n` back-to-back segments of at least 1 s filling the chunk."""
    rng = np.random.default_rng(seed)
    spare = chunk_s - n * 1.0
    if spare < 0:
        raise SystemExit(f"{n} segments of 1 s or more do not fit in {chunk_s} s")
    lengths = 1.0 + rng.dirichlet(np.ones(n)) * spare
    edges = np.round(np.concatenate([[0.0], np.cumsum(lengths)]), 3)  # NeMo's whole ms
    segments = [
        Segment(float(a), float(b), k % 4) for k, (a, b) in enumerate(itertools.pairwise(edges))
    ]
    t = np.arange(int(chunk_s * SAMPLE_RATE)) / SAMPLE_RATE
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    samples = (0.2 * envelope * rng.standard_normal(len(t))).astype(np.float32)
    return samples, segments


def seconds(work: Callable[..., object], *args: Any) -> tuple[float, float]:
    """Wall and CPU seconds of one call `work(*args)`."""
    wall, cpu = time.perf_counter(), time.process_time()
    work(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def one_pass(model: Any, audio: np.ndarray) -> None:
    """TitaNet over all of `audio` at once (uncapped, unlike a print)."""
    import torch

    with torch.inference_mode():
        model.infer_segment(audio)


def batched_forward(model: Any, spans: list[np.ndarray]) -> None:
    """All segments through TitaNet in one zero-padded batch (not what the container does)."""
    import torch

    padded = torch.zeros(len(spans), max(len(s) for s in spans))
    for row, span in enumerate(spans):
        padded[row, : len(span)] = torch.from_numpy(span)
    with torch.inference_mode():
        model.forward(
            input_signal=padded, input_signal_length=torch.tensor([len(s) for s in spans])
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunk-s", type=float, default=120.0)
    parser.add_argument("--segments", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3, help="chunks, each with new lengths")
    args = parser.parse_args()

    import torch

    model = titanet_large()
    registry = ModelRegistry(
        Loaders(
            asr=lambda: None,  # not used here
            diarization=lambda: None,
            embedding=lambda: model,
            inference=torch.inference_mode,
        )
    )
    engine = SpeechEngine(ServerConfig(device="cpu"), registry)
    print(
        f"{args.chunk_s:.0f} s chunks of {args.segments} segments (1 s or more), TitaNet-large "
        f"on CPU, torch threads {torch.get_num_threads()}, {args.repeat} chunks"
    )
    names = (
        "segment prints, one pass each (the container)",
        "one pass over the same audio (baseline)",
        "one batched forward, zero-padded",
    )
    runs: list[list[tuple[float, float]]] = [[], [], []]
    for seed in range(-1, args.repeat):  # chunk -1 warms up (first-call allocations), untimed
        # A new chunk each time: every real request brings segment lengths not seen before.
        samples, segments = chunk_and_segments(args.chunk_s, args.segments, seed + 1)
        spans = [
            samples[round(s.start_s * SAMPLE_RATE) : round(s.end_s * SAMPLE_RATE)] for s in segments
        ]
        timings = (
            seconds(engine._print_segments, samples, segments),
            seconds(one_pass, model, np.concatenate(spans)),
            seconds(batched_forward, model, spans),
        )
        if seed >= 0:
            for row, timing in zip(runs, timings, strict=True):
                row.append(timing)
    ratios = [[a[0] / b[0] for a, b in zip(row, runs[1], strict=True)] for row in runs]
    for name, row, ratio in zip(names, runs, ratios, strict=True):
        wall = statistics.median(w for w, _ in row)
        cpu = statistics.median(c for _, c in row)
        print(
            f"  {name:47s} {wall:7.2f} s wall {cpu:7.2f} s CPU"
            f"  {1000 * wall / args.segments:6.1f} ms per segment"
            f"  {statistics.median(ratio):5.2f}x baseline"
            f" (per chunk: {', '.join(f'{r:.2f}' for r in ratio)})"
        )


if __name__ == "__main__":
    main()
