"""The simulator's diarize endpoints, called directly (as the real container would be)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, get_args

import aiohttp
import numpy as np
import pytest
import soundfile

from tests.sim import SimCluster, SimConfig
from tests.sim.config import SpeakerEncoderName
from tests.sim.diarization import ENCODERS, NME_MAX_SPEAKERS, keep_largest_slots, nme_sc_cluster
from tests.speakers.voices import build_conversation, wav_bytes

LINES = [
    ("slt", "Good morning everyone, thanks for joining the weekly planning meeting."),
    ("awb", "Thanks. The budget is on track, but the server costs went up last month."),
    ("slt", "That is a lot. What caused the increase, and can we reduce it?"),
    ("awb", "Mostly the new GPU nodes. We can move some jobs to the night."),
]


def flite_dialogue(tmp_path: Path) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """Two flite voices taking turns (what the demo's Magpie produces), with the true turns."""
    parts, turns, t = [], [], 0.0
    for n, (voice, text) in enumerate(LINES):
        out = tmp_path / f"{n}.wav"
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(out)], check=True)
        samples, rate = soundfile.read(out, dtype="int16")
        assert rate == 16000
        parts += [samples, np.zeros(9600, np.int16)]
        turns.append((t, t + len(samples) / rate, voice))
        t += (len(samples) + 9600) / rate
    return np.concatenate(parts), turns


async def post(url: str, data: bytes | None) -> tuple[int, dict[str, object]]:
    form = aiohttp.FormData()
    if data is None:
        form.add_field("other", b"x", filename="x.txt")
    else:
        form.add_field("file", data, filename="a.wav", content_type="audio/wav")
    async with aiohttp.ClientSession() as session, session.post(url, data=form) as resp:
        return resp.status, await resp.json()


def majority_speakers(
    turns: list[tuple[float, float, str]], segments: list[dict[str, Any]]
) -> list[str]:
    """For each true turn, the hypothesis speaker covering most of it."""
    majority = []
    for start, end, _ in turns:
        overlap: dict[str, float] = {}
        for seg in segments:
            inter = min(end, seg["end_s"]) - max(start, seg["start_s"])
            if inter > 0:
                overlap[seg["speaker"]] = overlap.get(seg["speaker"], 0.0) + inter
        majority.append(max(overlap, key=lambda k: overlap[k]))
    return majority


async def test_two_flite_voices_two_speakers(sim: SimCluster, tmp_path: Path) -> None:
    samples, turns = flite_dialogue(tmp_path)
    status, body = await post(sim.parakeet.url + "/v1/audio/diarize-chunk", wav_bytes(samples))
    assert status == 200
    assert body["speakers_detected"] == 2
    segments = body["segments"]
    assert isinstance(segments, list)
    # Every true turn is covered mostly by one hypothesis speaker, alternating.
    majority = majority_speakers(turns, segments)
    assert majority[0] == majority[2] != majority[1] == majority[3]
    prints = body["fingerprints"]
    assert isinstance(prints, dict)
    a, b = (np.array(prints[k]) for k in ("speaker_0", "speaker_1"))
    assert a.shape == (192,)
    assert 1.0 - float(a @ b) > 0.3  # different voices, far apart
    for seg in segments:
        assert 0.0 <= seg["confidence"] <= 1.0
    assert set(body["fingerprint_speech_s"]) == {"speaker_0", "speaker_1"}
    # Segments of a second or more carry their own print, nearer their own slot's than the other's.
    long_enough = [s for s in segments if s["end_s"] - s["start_s"] >= 1.0]
    assert long_enough
    for seg in segments:
        if seg["end_s"] - seg["start_s"] < 1.0:
            assert seg["fingerprint"] is None
            continue
        own = np.array(seg["fingerprint"])
        assert own.shape == (192,)
        assert abs(np.linalg.norm(own) - 1.0) < 1e-3
        other = "speaker_1" if seg["speaker"] == "speaker_0" else "speaker_0"
        assert float(own @ np.array(prints[seg["speaker"]])) > float(own @ np.array(prints[other]))


async def test_diarize_without_fingerprints_and_errors(sim: SimCluster, tmp_path: Path) -> None:
    samples, _ = flite_dialogue(tmp_path)
    url = sim.parakeet.url + "/v1/audio/diarize"
    status, body = await post(url, wav_bytes(samples))
    assert status == 200
    assert "fingerprints" not in body
    assert all("fingerprint" not in s for s in body["segments"])  # type: ignore[union-attr]
    starts = [s["start_s"] for s in body["segments"]]  # type: ignore[union-attr]
    assert starts == sorted(starts)
    for data in (None, b"", b"ID3 this is an mp3"):
        status, body = await post(url, data)
        assert status == 400
        assert body["detail"]
    status, body = await post(url, wav_bytes(np.zeros(16000, np.int16)))
    assert status == 200
    assert body["segments"] == []  # silence: nobody speaks
    sim.faults.wedge("parakeet")
    status, body = await post(url + "-chunk", wav_bytes(samples))
    assert status == 500
    assert "CUBLAS_STATUS_EXECUTION_FAILED" in str(body["detail"])


def labels_per_person(
    turns: list[tuple[float, float, str]], segments: list[dict[str, Any]]
) -> dict[str, set[str]]:
    """Each person's set of majority speaker labels over their turns."""
    label_of: dict[str, set[str]] = {}
    for (_, _, person), label in zip(turns, majority_speakers(turns, segments), strict=True):
        label_of.setdefault(person, set()).add(label)
    return label_of


async def test_campplus_encoder_two_real_voices() -> None:
    """With CAM++ as the stand-in encoder: two recorded people, two speakers with prints."""
    conversation = build_conversation(["FEE083", "MEE009"], duration_s=40.0, seed=7)
    turns = [(t.start, t.end, t.speaker) for t in conversation.turns]
    async with SimCluster(SimConfig(nodes=1, speaker_encoder="campplus")) as sim:
        url = sim.parakeet.url + "/v1/audio/diarize-chunk"
        status, body = await post(url, wav_bytes(conversation.samples))
    assert status == 200
    assert body["models"] == {
        "diarization": (
            "sim/energy-vad+campplus-nmesc (stands in for nvidia/diar_sortformer_4spk-v1)"
        ),
        "embedding": "sim/3dspeaker-campplus (stands in for titanet_large)",
    }
    assert body["speakers_detected"] == 2
    segments = body["segments"]
    assert isinstance(segments, list)
    # Each person's turns all go mostly to one speaker, and the two people to different ones.
    label_of = labels_per_person(turns, segments)
    assert sorted(map(len, label_of.values())) == [1, 1]
    assert label_of["FEE083"] != label_of["MEE009"]
    prints = body["fingerprints"]
    assert isinstance(prints, dict)
    a, b = (np.array(prints[k]) for k in ("speaker_0", "speaker_1"))
    assert a.shape == b.shape == (192,)
    assert abs(float(np.linalg.norm(a)) - 1.0) < 1e-4
    assert 1.0 - float(a @ b) > 0.6  # CAM++ puts different people far apart


async def test_campplus_counts_telephone_voices_it_was_never_tuned_on() -> None:
    """Four held-out telephone-band voices in one chunk: CAM++'s NME-SC finds all four, one label
    each (average linkage at the thresholds chosen on the wideband tuning voices found two)."""
    people = ["ALLISON", "CARLO", "JUNE", "IRINA"]
    conversation = build_conversation(people, duration_s=60.0, seed=3)
    turns = [(t.start, t.end, t.speaker) for t in conversation.turns]
    async with SimCluster(SimConfig(nodes=1, speaker_encoder="campplus")) as sim:
        status, body = await post(
            sim.parakeet.url + "/v1/audio/diarize", wav_bytes(conversation.samples)
        )
    assert status == 200
    assert body["speakers_detected"] == 4
    segments = body["segments"]
    assert isinstance(segments, list)
    label_of = labels_per_person(turns, segments)
    assert sorted(label_of) == sorted(people)
    assert all(len(labels) == 1 for labels in label_of.values())
    assert len(set().union(*label_of.values())) == 4


def test_nme_sc_counts_speakers_without_a_threshold() -> None:
    """NME-SC on clusters of unit vectors: the count comes from the eigengap, whatever the spread
    of each cluster (two spreads an order of magnitude apart), and more than four speakers end
    in Sortformer's four slots, the biggest four keeping theirs."""
    rng = np.random.default_rng(5)
    for spread in (0.05, 0.5):
        for count in (1, 2, 3, 4, 6):
            sizes = [30 + 10 * k for k in range(count)]
            centres = rng.standard_normal((count, 192))
            vectors = np.concatenate([
                centres[k] + spread * rng.standard_normal((n, 192)) * np.linalg.norm(centres[k])
                / np.sqrt(192) for k, n in enumerate(sizes)
            ])  # fmt: skip
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            truth = np.repeat(np.arange(count), sizes)
            labels = nme_sc_cluster(vectors, NME_MAX_SPEAKERS)
            assert len(set(labels.tolist())) == count, (spread, count)
            # one found speaker per true one
            assert all(len(set(labels[truth == k].tolist())) == 1 for k in range(count))
            slots = keep_largest_slots(labels, vectors)
            assert len(set(slots.tolist())) == min(count, 4)
            for k in range(count - min(count, 4), count):  # the four biggest keep a slot each
                assert len(set(slots[truth == k].tolist())) == 1


def test_speaker_encoder_is_validated() -> None:
    assert set(get_args(SpeakerEncoderName)) == set(ENCODERS)  # each name has its profile
    with pytest.raises(ValueError, match="speaker_encoder"):
        SimConfig(speaker_encoder="titanet")  # type: ignore[arg-type]
