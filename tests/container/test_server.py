"""The container's HTTP API over fake NeMo models: shapes, windowing, fingerprints, errors."""

from __future__ import annotations

import asyncio
import json
import threading

import aiohttp
import numpy as np
import pytest

from tests.container.conftest import Factory
from tests.container.fakes import (
    FakeAsr,
    FakeSortformer,
    FakeTitanet,
    ogg_opus_bytes,
    silence,
    tone,
    unit_voice,
    wav_bytes,
)
from tests.paths import CONTRACTS

CONTRACT = json.loads((CONTRACTS / "diarize_chunk.json").read_text())


def dialogue() -> np.ndarray:
    """A 3 s, pause, B 1 s, pause, A+B overlap 2 s, pause, A 2 s."""
    return np.concatenate([
        tone("A", 3.0), silence(0.4), tone("B", 1.0), silence(0.4),
        tone("A", 2.0) + tone("B", 2.0), silence(0.4), tone("A", 2.0),
    ])  # fmt: skip


async def test_health_models_and_lazy_loading(start_server: Factory) -> None:
    server = await start_server()
    status, _ = await server.post("/v1/audio/diarize", wav_bytes(dialogue()))
    assert status == 200
    async with aiohttp.ClientSession() as session:
        async with session.get(server.url + "/health") as resp:
            health = await resp.json()
        async with session.get(server.url + "/v1/models") as resp:
            models = await resp.json()
    assert health["status"] == "ok"
    assert health["version"]
    assert health["models"]["diarization"]["loaded"] is True
    assert health["models"]["asr"]["loaded"] is False  # lazily: not used yet
    assert health["gpu_memory"]["total_bytes"] == 2
    assert {m["kind"] for m in models["data"]} == {"stt", "diarization", "embedding"}
    await server.post("/v1/audio/diarize", wav_bytes(dialogue()))
    assert server.load_counts["diarization"] == 1  # loaded once


async def test_diarize_chunk_contract_confidence_and_clean_fingerprints(
    start_server: Factory,
) -> None:
    server = await start_server(min_fingerprint_speech_s=2.0)
    status, body = await server.post("/v1/audio/diarize-chunk", wav_bytes(dialogue()))
    assert status == 200, body
    for key in CONTRACT["required"]:
        assert key in body
    starts = [s["start_s"] for s in body["segments"]]
    assert starts == sorted(starts)
    assert body["speakers_detected"] == 2
    assert {s["speaker"] for s in body["segments"]} == {"speaker_0", "speaker_1"}
    for seg in body["segments"]:
        assert 0.6 <= seg["confidence"] <= 0.93 + 1e-6  # edge frames are partly silent
    # A alone: 3 s + 2 s; its print comes from clean audio only, so it points at A exactly.
    a_print = np.array(body["fingerprints"]["speaker_0"])
    assert len(a_print) == CONTRACT["fingerprint_dim"]
    assert float(a_print @ unit_voice("A")) > 0.999
    assert body["fingerprint_speech_s"]["speaker_0"] == pytest.approx(5.0, abs=0.2)
    # B is alone for only 1 s (its other 2 s overlap A): flagged, not guessed.
    assert body["fingerprints"]["speaker_1"] is None
    assert body["fingerprint_speech_s"]["speaker_1"] == pytest.approx(1.0, abs=0.2)
    assert body["models"]["embedding"]
    # One TitaNet pass per segment of 1 s or more (its own print), then one for A's clean 5 s.
    *segment_seconds, clean_seconds = server.titanet.segment_seconds
    assert segment_seconds == pytest.approx([3.04, 1.04, 2.0, 2.0, 2.0])
    assert clean_seconds == pytest.approx(5.0, abs=0.2)


def dialogue_with_backchannel() -> np.ndarray:
    """`dialogue()` then, after a pause, B for 0.6 s: a segment too short for a print."""
    return np.concatenate([dialogue(), silence(0.4), tone("B", 0.6)])


def voice_of(fingerprint: list[float]) -> np.ndarray:
    """How much of each tone voice (A, B, C, D) a fake TitaNet print holds."""
    return np.array([fingerprint[n * 40] for n in range(4)])


def loudest_voice(fingerprint: list[float] | None) -> str | None:
    return None if fingerprint is None else "ABCD"[int(np.argmax(voice_of(fingerprint)))]


async def test_diarize_chunk_segments_carry_prints_of_their_own_audio(
    start_server: Factory,
) -> None:
    server = await start_server()
    status, body = await server.post(
        "/v1/audio/diarize-chunk", wav_bytes(dialogue_with_backchannel())
    )
    assert status == 200, body
    assert set(CONTRACT["segment_optional"]) == {"fingerprint"}
    assert [(s["start_s"], s["end_s"], s["speaker"]) for s in body["segments"]] == [
        (0.0, 3.04, "speaker_0"),
        (3.36, 4.4, "speaker_1"),
        (4.8, 6.8, "speaker_0"),
        (4.8, 6.8, "speaker_1"),
        (7.2, 9.2, "speaker_0"),
        (9.6, 10.2, "speaker_1"),
    ]
    prints = [s["fingerprint"] for s in body["segments"]]
    for fingerprint in prints[:5]:  # 1 s or more: 192 unit floats, rounded like the speakers'
        assert len(fingerprint) == CONTRACT["fingerprint_dim"]
        assert np.linalg.norm(fingerprint) == pytest.approx(1.0, abs=1e-5)
        assert all(round(x, 6) == x for x in fingerprint)
    assert prints[5] is None  # 0.6 s: shorter than segment_fingerprint_min_s
    half = np.sqrt(0.5)
    # Each print is of the segment's whole audio: the overlap's two segments hear both voices.
    expected = [(1, 0), (0, 1), (half, half), (half, half), (1, 0)]
    for fingerprint, (a, b) in zip(prints, expected, strict=False):
        assert voice_of(fingerprint) == pytest.approx([a, b, 0, 0], abs=0.03)
    # B's slot has too little clean speech for a print, but its 1.04 s turn has one.
    assert body["fingerprints"]["speaker_1"] is None


async def test_whole_file_diarize_computes_no_segment_prints(start_server: Factory) -> None:
    server = await start_server()
    status, body = await server.post("/v1/audio/diarize", wav_bytes(dialogue_with_backchannel()))
    assert status == 200, body
    assert len(body["segments"]) == 6
    assert all("fingerprint" not in s for s in body["segments"])
    assert server.titanet.segment_seconds == []  # one window: TitaNet never ran
    assert server.load_counts["embedding"] == 0


async def test_segment_print_length_settings(start_server: Factory) -> None:
    """The shortest printed segment is a setting; a print hears at most
    max_fingerprint_speech_s of its segment, as the speakers' prints do."""
    server = await start_server(segment_fingerprint_min_s=2.5, max_fingerprint_speech_s=1.5,
                                min_fingerprint_speech_s=100.0)  # fmt: skip
    status, body = await server.post("/v1/audio/diarize-chunk", wav_bytes(dialogue()))
    assert status == 200, body
    printed = [s["fingerprint"] is not None for s in body["segments"]]
    assert printed == [True, False, False, False, False]  # only the 3.04 s turn
    assert server.titanet.segment_seconds == [1.5]
    assert body["fingerprints"] == {"speaker_0": None, "speaker_1": None}


async def test_non_finite_segment_print_is_a_model_failure(start_server: Factory) -> None:
    """A NaN print is a wedged model (500, so the gateway has the container restarted), never
    a print that names nobody."""
    server = await start_server(titanet=FakeTitanet(non_finite=True),
                                min_fingerprint_speech_s=100.0)  # fmt: skip
    status, body = await server.post("/v1/audio/diarize-chunk", wav_bytes(dialogue()))
    assert status == 500
    assert body["detail"].startswith("ModelOutputError: ")
    assert "not finite" in body["detail"]
    assert server.titanet.segment_seconds == [pytest.approx(3.04)]  # the first segment's


async def test_confidence_null_when_tensor_missing(start_server: Factory) -> None:
    server = await start_server(sortformer=FakeSortformer(with_tensor=False))
    status, body = await server.post("/v1/audio/diarize", wav_bytes(dialogue()))
    assert status == 200
    assert all(seg["confidence"] is None for seg in body["segments"])
    assert "fingerprints" not in body


# Diarization windows of at most 10 s, cut in a pause; 2 s of clean speech make a print.
TEN_SECOND_WINDOWS = {
    "diar_window_s": 10.0,
    "window_search_s": 3.0,
    "min_fingerprint_speech_s": 2.0,
}


async def test_long_input_diarized_in_linked_windows(start_server: Factory) -> None:
    audio = np.concatenate([
        tone("A", 4.0), silence(1.0), tone("B", 4.0), silence(1.0),   # window 1
        tone("C", 4.0), silence(1.0), tone("B", 4.0), silence(1.0),   # window 2: B first
        tone("A", 4.0), silence(1.0),                                 # window 3
    ])  # fmt: skip
    server = await start_server(**TEN_SECOND_WINDOWS)
    status, body = await server.post("/v1/audio/diarize", wav_bytes(audio))
    assert status == 200, body
    assert len(server.sortformer.calls) == 3
    assert max(server.sortformer.calls) <= 10.0
    speakers = [s["speaker"] for s in body["segments"]]
    assert speakers == ["speaker_0", "speaker_1", "speaker_2", "speaker_1", "speaker_0"]
    assert body["segments"][-1]["start_s"] == pytest.approx(20.0, abs=0.1)
    # Linking needs one print per local speaker (A, B | C, B | A), the segments none.
    assert len(server.titanet.segment_seconds) == 5
    assert all("fingerprint" not in s for s in body["segments"])


async def test_segment_prints_survive_linking_across_windows(start_server: Factory) -> None:
    """Window 2 sees C first (its local speaker_0) and B second; globally they are speaker_2
    and speaker_1, and each segment keeps the print of its own audio through the renumbering."""
    audio = np.concatenate([
        tone("A", 4.0), silence(1.0), tone("B", 4.0), silence(1.0),   # window 1
        tone("C", 4.0), silence(1.0), tone("B", 0.5) + tone("C", 0.5),  # window 2
        silence(0.5), tone("B", 3.0), silence(1.0),
        tone("A", 4.0), silence(1.0),                                 # window 3
    ])  # fmt: skip
    server = await start_server(**TEN_SECOND_WINDOWS)
    status, body = await server.post("/v1/audio/diarize-chunk", wav_bytes(audio))
    assert status == 200, body
    assert len(server.sortformer.calls) == 3
    heard = [(s["speaker"], loudest_voice(s["fingerprint"])) for s in body["segments"]]
    assert heard == [
        ("speaker_0", "A"),
        ("speaker_1", "B"),
        ("speaker_2", "C"),
        ("speaker_1", None),  # B's 0.5 s overlapping C: too short for a print
        ("speaker_2", None),
        ("speaker_1", "B"),
        ("speaker_0", "A"),
    ]


async def test_transcription_formats_and_asr_windows(start_server: Factory) -> None:
    audio = np.concatenate([tone("A", 2.0), silence(1.0), tone("B", 2.0), silence(1.0),
                            tone("A", 2.0)])  # fmt: skip
    server = await start_server(asr_window_s=4.0, window_search_s=2.0)
    status, body = await server.post("/v1/audio/transcriptions", wav_bytes(audio),
                                     response_format="verbose_json", language="en")  # fmt: skip
    assert status == 200, body
    assert len(server.asr.calls) >= 2
    assert max(server.asr.calls) <= 4.0
    words = body["words"]
    assert [w["word"] for w in words].count("bravo") == 5
    bravo = [w for w in words if w["word"] == "bravo"]
    assert bravo[0]["start"] == pytest.approx(3.0, abs=0.45)  # shifted to recording time
    starts = [w["start"] for w in words]
    assert starts == sorted(starts)
    assert body["duration"] == pytest.approx(8.0, abs=0.01)
    assert body["language"] == "en"
    status, text = await server.post("/v1/audio/transcriptions", wav_bytes(audio),
                                     response_format="text")  # fmt: skip
    assert "bravo" in text
    status, plain = await server.post("/v1/audio/transcriptions", wav_bytes(audio))
    assert set(plain) == {"text"}


async def test_ogg_opus_is_heard_as_its_wav_is(start_server: Factory) -> None:
    """What the gateway remuxes a browser's webm/opus into: decoded, resampled 48 -> 16 kHz."""
    audio = np.concatenate([tone("A", 2.0), silence(1.0), tone("B", 2.0)])
    server = await start_server()
    answers = [
        await server.post("/v1/audio/transcriptions", upload, response_format="verbose_json")
        for upload in (wav_bytes(audio), ogg_opus_bytes(audio))
    ]
    (wav_status, from_wav), (ogg_status, from_ogg) = answers
    assert (wav_status, ogg_status) == (200, 200), from_ogg
    assert [w["word"] for w in from_ogg["words"]] == [w["word"] for w in from_wav["words"]]
    assert "bravo" in from_ogg["text"]
    # Opus adds its encoder's look-ahead (6.5 ms) and pads to whole 20 ms frames.
    assert from_ogg["duration"] == pytest.approx(from_wav["duration"], abs=0.03)
    status, body = await server.post("/v1/audio/diarize-chunk", ogg_opus_bytes(audio))
    assert status == 200, body
    assert body["speakers_detected"] == 2


def damaged_packets(ogg: bytes) -> bytes:
    """The same Ogg/Opus with every packet's bytes overwritten (pages and CRCs intact): what
    the gateway's remux would pass on from a client's damaged WebM, since it reads no packet."""
    import io

    import av

    out = io.BytesIO()
    with av.open(io.BytesIO(ogg)) as source, av.open(out, "w", format="ogg") as target:
        stream = source.streams.audio[0]
        copy = target.add_stream_from_template(stream)
        for packet in source.demux(stream):
            if packet.dts is not None:
                damaged = av.Packet(b"\xff" * packet.size)
                damaged.pts, damaged.dts = packet.pts, packet.dts
                damaged.duration, damaged.time_base = packet.duration, packet.time_base
                damaged.stream = copy
                target.mux(damaged)
    return out.getvalue()


async def test_health_answers_while_an_upload_is_decoded(
    start_server: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading audio (minutes for hours of Ogg/Opus) runs off the event loop: a decode held
    until /health has answered would deadlock the server if it ran on the loop."""
    from parakeet_server import server as server_module

    decoding, release = threading.Event(), threading.Event()
    real_read = server_module.read_audio

    def held_read(data: bytes, *, max_audio_s: float) -> np.ndarray:
        decoding.set()
        assert release.wait(30), "never released"
        return real_read(data, max_audio_s=max_audio_s)

    monkeypatch.setattr(server_module, "read_audio", held_read)
    server = await start_server()
    upload = asyncio.create_task(
        server.post("/v1/audio/transcriptions", ogg_opus_bytes(tone("A", 1.0)))
    )
    try:
        assert await asyncio.to_thread(decoding.wait, 30)
        async with (
            aiohttp.ClientSession() as session,
            session.get(server.url + "/health", timeout=aiohttp.ClientTimeout(10)) as resp,
        ):
            assert resp.status == 200
        assert not upload.done()
    finally:
        release.set()
    status, body = await upload
    assert status == 200, body
    assert "alpha" in body["text"]


async def test_ogg_input_errors(start_server: Factory) -> None:
    import io

    import soundfile

    server = await start_server(max_audio_s=5.0)
    vorbis = io.BytesIO()
    soundfile.write(vorbis, tone("A", 1.0), 16000, format="OGG", subtype="VORBIS")
    opus = ogg_opus_bytes(tone("A", 1.0))
    cases = [
        (vorbis.getvalue(), 400, "must hold Opus, not vorbis"),
        (damaged_packets(opus), 400, "file is malformed"),
        (opus[:200], 400, "could not decode the Ogg/Opus data"),
        (b"OggS" + bytes(300), 400, "could not decode the Ogg/Opus data"),
        (ogg_opus_bytes(tone("A", 6.0)), 413, "the maximum is 5 s"),
    ]
    for upload, expected, detail in cases:
        status, body = await server.post("/v1/audio/transcriptions", upload)
        assert status == expected, body
        assert detail in body["detail"]
        assert "BytesIO" not in body["detail"]
    assert server.asr.calls == []


async def test_input_errors(start_server: Factory) -> None:
    server = await start_server(max_audio_s=5.0, max_upload_bytes=400_000)
    cases = [
        (await server.post("/v1/audio/diarize", None), 400),
        (await server.post("/v1/audio/diarize", b""), 400),
        (await server.post("/v1/audio/diarize", b"ID3 not a wav file at all"), 400),
        (await server.post("/v1/audio/diarize", wav_bytes(tone("A", 1.0), rate=22050)), 400),
        (await server.post("/v1/audio/diarize", wav_bytes(silence(0.0))), 400),
        (await server.post("/v1/audio/diarize-chunk", wav_bytes(tone("A", 6.0))), 413),
        (await server.post("/v1/audio/transcriptions", wav_bytes(tone("A", 1.0)),
                           response_format="srt"), 400),
        (await server.post("/v1/audio/transcriptions", b"\x00" * 500_000), 413),
    ]  # fmt: skip
    for (status, body), expected in cases:
        assert status == expected, body
        assert body["detail"]
    assert server.sortformer.calls == []


async def test_model_failure_is_500_and_load_failure_503(start_server: Factory) -> None:
    server = await start_server(sortformer=FakeSortformer(broken=True))
    status, body = await server.post("/v1/audio/diarize", wav_bytes(dialogue()))
    assert status == 500
    assert "CUBLAS_STATUS_EXECUTION_FAILED" in body["detail"]
    server = await start_server(failing_loader="asr")
    status, body = await server.post("/v1/audio/transcriptions", wav_bytes(dialogue()))
    assert status == 503
    assert "could not be loaded" in body["detail"]


async def test_transcription_and_diarization_overlap_on_the_gpu(start_server: Factory) -> None:
    """The gateway sends a chunk's two requests at once: they run side by side (each model
    family has its own lane), so the fakes can meet at a barrier; a shared lock would
    deadlock them and the barrier would break (500)."""
    barrier = threading.Barrier(2)
    server = await start_server(asr=FakeAsr(rendezvous=barrier),
                                sortformer=FakeSortformer(rendezvous=barrier))  # fmt: skip
    audio = wav_bytes(dialogue())
    (s1, _), (s2, _) = await asyncio.gather(
        server.post("/v1/audio/transcriptions", audio),
        server.post("/v1/audio/diarize", audio),
    )
    assert (s1, s2) == (200, 200)
