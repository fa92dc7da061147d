"""The gateway's speaker endpoints against the simulator (real speech, real HTTP)."""

from __future__ import annotations

import io
import json
from collections import Counter

import aiohttp
import av
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from spark_gateway.config import Timeouts
from spark_gateway.transcript_formats import CUE_MAX_CHARS, CUE_MAX_S
from tests.gateway.conftest import GatewayFactory, RunningGateway
from tests.paths import CONTRACTS
from tests.sim import SimCluster
from tests.speakers.voices import Conversation, RefTurn, build_conversation, wav_bytes


def mp3_bytes(samples: np.ndarray) -> bytes:
    """Encode with PyAV, as a phone app would upload it."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp3") as container:
        stream = container.add_stream("mp3", rate=16000)
        stream.layout = "mono"
        stream.bit_rate = 64000
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


async def post(gateway: RunningGateway, path: str, data: bytes | None, *,
               fields: dict[str, str] | None = None, headers: dict[str, str] | None = None,
               filename: str = "meeting.bin") -> aiohttp.ClientResponse:  # fmt: skip
    form = aiohttp.FormData()
    if data is not None:
        form.add_field("file", data, filename=filename, content_type="application/octet-stream")
    else:  # still multipart, just without the file
        form.add_field("notes", b"minutes", filename="notes.txt", content_type="text/plain")
    for key, value in (fields or {}).items():
        form.add_field(key, value)
    async with aiohttp.ClientSession() as session:
        resp = await session.post(
            gateway.url + path, data=form, headers=gateway.headers() if headers is None else headers
        )
        await resp.read()
        return resp


def majority_speaker(turn: RefTurn, segments: list[dict[str, object]]) -> str | None:
    """The hypothesis speaker that overlaps a reference turn the most."""
    overlap: Counter[str] = Counter()
    for seg in segments:
        start, end = float(seg["start_ms"]) / 1000, float(seg["end_ms"]) / 1000  # type: ignore[arg-type]
        inter = min(end, turn.end) - max(start, turn.start)
        if inter > 0:
            overlap[str(seg["speaker"])] += inter
    return overlap.most_common(1)[0][0] if overlap else None


def check_mapping(conversation: Conversation, segments: list[dict[str, object]]) -> None:
    """Each reference speaker maps to exactly one hypothesis speaker, and vice versa."""
    mapping: dict[str, Counter[str]] = {}
    for turn in conversation.turns:
        hyp = majority_speaker(turn, segments)
        if hyp is not None:
            mapping.setdefault(turn.speaker, Counter())[hyp] += 1
    chosen = {ref: counts.most_common(1)[0][0] for ref, counts in mapping.items()}
    assert len(set(chosen.values())) == len(conversation.speakers), mapping
    for ref, counts in mapping.items():
        assert counts[chosen[ref]] >= 0.75 * sum(counts.values()), mapping


async def test_two_voices_json(sim: SimCluster, start_gateway: GatewayFactory) -> None:
    conversation = build_conversation(["FEE078", "MEE009"], duration_s=20.0, seed=3)
    gateway = await start_gateway(parakeet_url=sim.parakeet.url)
    resp = await post(gateway, "/api/audio/transcribe-with-speakers",
                      mp3_bytes(conversation.samples))  # fmt: skip
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    contract = json.loads((CONTRACTS / "transcribe_with_speakers.json").read_text())
    for key in contract["required"]:
        assert key in body
    assert body["speakers_detected"] == 2
    assert body["models"]["transcription"] == gateway.config.stt_model
    assert body["models"]["diarization"]
    assert abs(body["duration"] - conversation.duration) < 0.2
    segments = body["segments"]
    assert segments
    starts = [s["start_ms"] for s in segments]
    assert starts == sorted(starts)
    for seg in segments:
        for key in contract["segment_required"]:
            assert key in seg
        assert seg["text"] == " ".join(seg["text"].split())
        assert 0.0 <= seg["confidence"] <= 1.0
    check_mapping(conversation, segments)


async def test_text_formats(sim: SimCluster, start_gateway: GatewayFactory) -> None:
    conversation = build_conversation(["MEO069", "FEE078"], duration_s=8.0, seed=5)
    gateway = await start_gateway(parakeet_url=sim.parakeet.url)
    data = wav_bytes(conversation.samples)
    srt = await post(gateway, "/api/audio/transcribe-with-speakers", data,
                     fields={"response_format": "srt"})  # fmt: skip
    assert srt.status == 200
    assert srt.content_type == "text/plain"
    srt_text = await srt.text()
    assert srt_text.startswith("1\n00:00:")
    assert " --> " in srt_text
    assert "Speaker_0" in srt_text
    vtt = await post(gateway, "/api/audio/transcribe-with-speakers", data,
                     fields={"response_format": "vtt"})  # fmt: skip
    assert vtt.status == 200
    vtt_text = await vtt.text()
    assert vtt_text.startswith("WEBVTT\n\n")
    assert "<v Speaker_" in vtt_text
    text = await post(gateway, "/api/audio/transcribe-with-speakers", data,
                      fields={"response_format": "text"})  # fmt: skip
    lines = (await text.text()).splitlines()
    assert lines
    assert all(line.startswith("[00:") and ": " in line for line in lines)


async def test_long_audio_path_links_speakers(
    sim: SimCluster, start_gateway: GatewayFactory
) -> None:
    conversation = build_conversation(["FEE078", "MEE009"], duration_s=60.0, seed=11)
    gateway = await start_gateway(parakeet_url=sim.parakeet.url, long_audio_threshold_s=30.0,
                                  chunk_target_s=20.0, chunk_overlap_s=1.0,
                                  chunk_concurrency=2)  # fmt: skip
    resp = await post(gateway, "/api/audio/transcribe-with-speakers",
                      wav_bytes(conversation.samples))  # fmt: skip
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    # Several chunks were diarized, yet the client sees one consistent set of speakers.
    assert sim.parakeet.diarizations >= 3
    assert body["speakers_detected"] == 2
    assert body["speakers"] == ["Speaker_0", "Speaker_1"]
    segments = body["segments"]
    assert segments[-1]["end_ms"] > (conversation.duration - 10) * 1000
    check_mapping(conversation, segments)


async def test_diarize_chunk_passthrough(sim: SimCluster, start_gateway: GatewayFactory) -> None:
    # 45 s: the simulator's GE2E stand-in over-splits a few short turns (20 s: four speakers).
    conversation = build_conversation(["FEE083", "MEE009"], duration_s=45.0, seed=2)
    gateway = await start_gateway(parakeet_url=sim.parakeet.url)
    resp = await post(gateway, "/api/audio/diarize-chunk", mp3_bytes(conversation.samples))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    contract = json.loads((CONTRACTS / "diarize_chunk.json").read_text())
    for key in contract["required"]:
        assert key in body
    assert body["speakers_detected"] == 2
    starts = [s["start_s"] for s in body["segments"]]
    assert starts == sorted(starts)
    for vector in body["fingerprints"].values():
        assert len(vector) == contract["fingerprint_dim"]
        assert abs(np.linalg.norm(vector) - 1.0) < 1e-3


async def test_wedged_parakeet_is_503_with_retry_after(
    sim: SimCluster, start_gateway: GatewayFactory
) -> None:
    gateway = await start_gateway(parakeet_url=sim.parakeet.url)
    sim.faults.wedge("parakeet")
    data = wav_bytes(build_conversation(["FEE083"], duration_s=3.0).samples)
    for path in ("/api/audio/transcribe-with-speakers", "/api/audio/diarize-chunk"):
        resp = await post(gateway, path, data)
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "60"
        assert (await resp.json())["error"]["code"] == "upstream_wedged"
    # The long path fails the same way, and the remaining chunks are cancelled.
    long_gateway = await start_gateway(parakeet_url=sim.parakeet.url, long_audio_threshold_s=10.0,
                                       chunk_target_s=10.0)  # fmt: skip
    long_audio = wav_bytes(build_conversation(["FEE083"], duration_s=40.0).samples)
    resp = await post(long_gateway, "/api/audio/transcribe-with-speakers", long_audio)
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "60"


async def test_client_errors(sim: SimCluster, start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway(parakeet_url=sim.parakeet.url, max_upload_bytes=200_000)
    path = "/api/audio/transcribe-with-speakers"
    data = wav_bytes(build_conversation(["FEE083"], duration_s=2.0).samples)
    cases = [
        (await post(gateway, path, None, fields={"x": "y"}), 400, "missing_file"),
        (await post(gateway, path, b""), 400, "empty_audio"),
        (await post(gateway, path, b"this is not audio at all" * 10), 400, "invalid_audio"),
        (await post(gateway, path, data, fields={"response_format": "docx"}), 400,
         "unsupported_response_format"),
        (await post(gateway, path, data, fields={"language": "en; rm -rf"}), 400,
         "invalid_language"),
        (await post(gateway, "/api/audio/diarize-chunk", b"\x00" * 64), 400, "invalid_audio"),
    ]  # fmt: skip
    for resp, status, code in cases:
        assert resp.status == status
        assert (await resp.json())["error"]["code"] == code
    async with aiohttp.ClientSession() as session:
        resp = await session.post(gateway.url + path, data=b"raw", headers=gateway.headers())
        assert resp.status == 415
        resp = await session.post(gateway.url + path, data=aiohttp.FormData({"file": "x"}))
        assert resp.status == 401
    too_big = await post(gateway, path, b"\x00" * 300_000)
    assert too_big.status == 413
    assert sim.parakeet.transcriptions == 0


async def test_error_codes_in_body(sim: SimCluster, start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway(parakeet_url=sim.parakeet.url)
    async with aiohttp.ClientSession(headers=gateway.headers()) as session:
        form = aiohttp.FormData()
        form.add_field("file", b"", filename="a.wav")
        async with session.post(gateway.url + "/api/audio/transcribe-with-speakers",
                                data=form) as resp:  # fmt: skip
            body = await resp.json()
    assert resp.status == 400
    assert body["error"]["code"] == "empty_audio"


async def test_unconfigured_parakeet_is_503(start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway(parakeet_url=None)
    data = wav_bytes(build_conversation(["FEE083"], duration_s=2.0).samples)
    resp = await post(gateway, "/api/audio/transcribe-with-speakers", data)
    assert resp.status == 503


@pytest.mark.parametrize(
    "diarization",
    [
        {"segments": "garbage"},
        {"segments": [{"start_s": 0, "end_s": "late", "speaker": "speaker_0"}]},
        ["not", "an", "object"],
    ],
)
async def test_malformed_upstream_is_502(
    start_gateway: GatewayFactory, diarization: object
) -> None:
    """A container that answers 200 with nonsense: a real HTTP server playing a broken one."""

    async def transcriptions(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"text": "hi", "words": [{"word": "hi", "start": 0, "end": 0.4}]})

    async def diarize(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response(diarization)

    app = web.Application(client_max_size=10_000_000)
    app.router.add_post("/v1/audio/transcriptions", transcriptions)
    app.router.add_post("/v1/audio/diarize", diarize)
    app.router.add_post("/v1/audio/diarize-chunk", diarize)
    broken = TestServer(app, host="127.0.0.1")
    await broken.start_server()
    try:
        gateway = await start_gateway(parakeet_url=str(broken.make_url("")).rstrip("/"))
        data = wav_bytes(build_conversation(["FEE083"], duration_s=2.0).samples)
        for path in ("/api/audio/transcribe-with-speakers", "/api/audio/diarize-chunk"):
            resp = await post(gateway, path, data)
            assert resp.status == 502, path
    finally:
        await broken.close()


async def test_silence_has_no_diarized_speaker(
    sim: SimCluster, start_gateway: GatewayFactory
) -> None:
    """The diarizer hears nobody; whatever the recogniser makes of the silence is given to a
    default speaker with an unknown (null) confidence rather than a made-up one."""
    gateway = await start_gateway(parakeet_url=sim.parakeet.url)
    resp = await post(gateway, "/api/audio/transcribe-with-speakers",
                      wav_bytes(np.zeros(3 * 16000, np.int16)))  # fmt: skip
    assert resp.status == 200
    body = await resp.json()
    assert body["duration"] == 3.0
    assert body["speakers_detected"] == len(body["speakers"]) <= 1
    for segment in body["segments"]:
        assert segment["speaker"] == "Speaker_0"
        assert segment["confidence"] is None
        assert segment["low_confidence"] is False


async def test_full_slots_in_a_short_recording_are_diarized_again_in_chunks(
    sim: SimCluster, start_gateway: GatewayFactory
) -> None:
    """Five people in 90 s: one diarization call folds two of them into one of its four slots
    (the diarizer is unsure of it throughout), so the recording is diarized again in halves
    whose speakers are linked (no four-speaker ceiling)."""
    voices = ["FEE083", "MEE009", "FEE078", "MEO069", "MEE012"]
    conversation = build_conversation(voices, duration_s=90.0, seed=103, keep_back=0.35)
    # pocketsphinx needs a while for 90 s on a busy 2-core machine
    slow = Timeouts(connect=2, transcription=600, diarization=600, speech=30, health=2)
    gateway = await start_gateway(parakeet_url=sim.parakeet.url, timeouts=slow)
    resp = await post(gateway, "/api/audio/transcribe-with-speakers",
                      wav_bytes(conversation.samples))  # fmt: skip
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    # The first call (one chunk, four speakers), then the 90 s again in two halves.
    assert sim.parakeet.diarizations >= 3
    assert body["speakers_detected"] >= 4
    assert sim.parakeet.transcriptions == 1  # the words of the first pass are kept


def srt_cues(text: str) -> list[tuple[float, float, str]]:
    """(start, end, text) of each SubRip cue, parsed independently of our writer."""
    cues = []
    for block in text.strip().split("\n\n"):
        number, times, *lines = block.split("\n")
        assert number.isdigit()
        start, end = (
            sum(
                float(part) * 60**k
                for k, part in enumerate(reversed(t.replace(",", ".").split(":")))
            )
            for t in times.split(" --> ")
        )
        cues.append((start, end, "\n".join(lines)))
    return cues


async def test_long_turns_become_readable_cues(
    sim: SimCluster, start_gateway: GatewayFactory
) -> None:
    """Turns of 12-16 s become cues of at most 7 s and 84 characters, each labelled.

    Every word of the JSON transcript is still there, in order, under the same speaker.
    """
    conversation = build_conversation(["MEE009", "FEE078"], duration_s=40.0, seed=4,
                                      turn_s=(12.0, 16.0))  # fmt: skip
    gateway = await start_gateway(parakeet_url=sim.parakeet.url)
    data = wav_bytes(conversation.samples)
    as_json = await post(gateway, "/api/audio/transcribe-with-speakers", data)
    assert as_json.status == 200, await as_json.text()
    segments = (await as_json.json())["segments"]
    longest = max(s["end_ms"] - s["start_ms"] for s in segments)
    assert longest > CUE_MAX_S * 1000, "the conversation should hold turns longer than a cue"
    srt = await post(gateway, "/api/audio/transcribe-with-speakers", data,
                     fields={"response_format": "srt"})  # fmt: skip
    assert srt.status == 200
    cues = srt_cues(await srt.text())
    assert len(cues) > len(segments)
    labels = [s["speaker"] + ("?" if s["low_confidence"] else "") for s in segments]
    said = []
    for start, end, text in cues:
        assert end - start <= CUE_MAX_S + 1e-3, (start, end, text)
        assert len(text) <= CUE_MAX_CHARS, text
        label, _, words = text.partition(": ")
        assert label in labels, text
        said.append((label, words))
    # Word for word, each under its own speaker, the cues say what the JSON's turns say.
    assert [(label, word) for label, words in said for word in words.split()] == [
        (label, word)
        for label, s in zip(labels, segments, strict=True)
        for word in s["text"].split()
    ]
    vtt = await post(gateway, "/api/audio/transcribe-with-speakers", data,
                     fields={"response_format": "vtt"})  # fmt: skip
    vtt_text = await vtt.text()
    assert vtt_text.count(" --> ") == len(cues)
    assert all(f"<v {label}>{words}\n" in vtt_text for label, words in said)
