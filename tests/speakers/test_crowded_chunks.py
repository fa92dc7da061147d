"""Chunks that may hold more people than the diarizer has slots are diarized again in halves.

Real voices through the simulator's diarize-chunk over HTTP; the routes' own tests
(test_routes.py, test_diarized_json.py) check the same through the gateway.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import aiohttp
import pytest

from spark_gateway.speakers.chunking import Chunk, slice_samples
from spark_gateway.speakers.parsing import Diarization, parse_diarization
from spark_gateway.speakers.pipeline import (
    SAMPLE_RATE,
    SpeakerOptions,
    diarize_finer,
    first_plan,
    is_crowded,
)
from tests.sim import SimCluster
from tests.speakers.voices import TUNING_VOICES, build_conversation, wav_bytes


def diarization(slots: dict[str, list[float | None]], seconds: float = 4.0) -> Diarization:
    """A diarize-chunk answer: per slot, one segment of `seconds` per confidence given."""
    segments: list[dict[str, Any]] = []
    for n, (label, confidences) in enumerate(slots.items()):
        for k, confidence in enumerate(confidences):
            start = 20.0 * k + 4.0 * n
            segments.append({"start_s": start, "end_s": start + seconds, "speaker": label,
                             "confidence": confidence})  # fmt: skip
    segments.sort(key=lambda s: s["start_s"])
    return parse_diarization({"duration": 60.0, "segments": segments,
                              "speakers_detected": len(slots)})  # fmt: skip


def test_a_slot_the_diarizer_was_unsure_of_throughout_is_the_sign() -> None:
    sure = {f"speaker_{k}": [0.9, 0.85] for k in range(4)}
    assert not is_crowded(diarization(sure), unsure_below=0.76)  # four people, all clear
    unsure = {"speaker_0": [0.9, 0.9], "speaker_1": [0.7, 0.75]}
    assert is_crowded(diarization(unsure), unsure_below=0.76)  # two people folded into one
    # One doubtful segment of a clear voice is not the sign, nor a slot under 3 s of speech.
    assert not is_crowded(diarization({"speaker_0": [0.5, 0.95, 0.95]}), unsure_below=0.76)
    assert not is_crowded(diarization({"speaker_0": [0.3]}, seconds=2.5), unsure_below=0.76)


def test_without_confidences_every_slot_taken_is_the_sign() -> None:
    four = {f"speaker_{k}": [None] for k in range(4)}
    assert is_crowded(diarization(four), unsure_below=0.76)
    three = {f"speaker_{k}": [None] for k in range(3)}
    assert not is_crowded(diarization(three), unsure_below=0.76)


async def test_crowded_chunks_of_a_long_recording_are_halved_down_to_the_floor(
    sim: SimCluster,
) -> None:
    # Six people in 130 s, two first chunks of 72 and 59.5 s: the simulator folds people into
    # slots of both (measured); the first is diarized again in halves, the second is already
    # shorter than two pieces of the floor.
    conversation = build_conversation(list(TUNING_VOICES[:6]), duration_s=130.0, seed=1)
    samples = conversation.samples
    options = SpeakerOptions(long_audio_threshold_s=60.0, chunk_s=75.0, min_piece_s=30.0)
    calls: list[Chunk] = []
    async with aiohttp.ClientSession() as session:

        async def diarize(chunks: list[Chunk]) -> list[Diarization]:
            answers = []
            for chunk in chunks:
                calls.append(chunk)
                form = aiohttp.FormData()
                form.add_field("file", wav_bytes(slice_samples(samples, SAMPLE_RATE, chunk)),
                               filename="chunk.wav", content_type="audio/wav")  # fmt: skip
                async with session.post(f"{sim.parakeet.url}/v1/audio/diarize-chunk",
                                        data=form) as resp:  # fmt: skip
                    assert resp.status == 200
                    answers.append(parse_diarization(await resp.json()))
            return answers

        first = first_plan(samples, options)
        first_answers = await diarize(first)
        chunks, diarizations = await diarize_finer(samples, first, first_answers, diarize, options)

    assert len(first) == 2
    assert all(is_crowded(d, unsure_below=options.unsure_below) for d in first_answers)
    assert len(chunks) == len(diarizations) >= 3
    assert len(calls) == 2 + 2 * (len(chunks) - 2)  # each halving: two calls, one more piece
    # The final plan tiles the recording, numbered in time order, each piece sent with overlap.
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert chunks[0].own_start_s == 0.0
    assert chunks[-1].own_end_s == pytest.approx(conversation.duration)
    for before, after in pairwise(chunks):
        assert before.own_end_s == after.own_start_s
        assert after.start_s < after.own_start_s
        assert before.end_s > before.own_end_s
    for chunk, answer in zip(chunks, diarizations, strict=True):
        length = chunk.own_end_s - chunk.own_start_s
        assert length >= 0.4 * 2 * options.min_piece_s  # a half of at least twice the floor
        assert length < 2 * options.min_piece_s or not is_crowded(
            answer, unsure_below=options.unsure_below
        )
