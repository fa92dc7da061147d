"""The speech container's HTTP server over the real NeMo classes (CPU, tiny, random weights).

Every request below runs NeMo's own code from the upload to the answer: `from_pretrained`
restores the published `.nemo` files, `transcribe()` decodes with TDT and word timestamps,
streaming Sortformer's `diarize()` returns lines and the sigmoid tensor, TitaNet's
`infer_segment()` the embedding. What the models say is fixed by their output layers
(conftest), so the answers can be checked exactly.
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from nemo.collections.asr.models import (
    EncDecRNNTBPEModel,
    EncDecSpeakerLabelModel,
    SortformerEncLabelModel,
)

from parakeet_server.audio import SAMPLE_RATE, plan_windows, read_audio
from parakeet_server.config import ServerConfig
from parakeet_server.models import STREAMING_PRESET, ModelRegistry, nemo_loaders
from tests.container.fakes import ogg_opus_bytes, wav_bytes
from tests.container.nemo.conftest import (
    SORTFORMER_TURNS,
    SORTFORMER_V1,
    TDT_DURATION,
    TURNS,
    V1_SPEAKER_LOGITS,
    Factory,
    Running,
    TinyModels,
    dialogue,
    speech_like,
)
from tests.paths import CONTRACTS

FRAME_S = 0.08  # encoder frame of both FastConformers: 10 ms hop x subsampling 8
CONTRACT = json.loads((CONTRACTS / "diarize_chunk.json").read_text())
WORD_GAP_S = TDT_DURATION * FRAME_S  # the forced transducer says one word per 4 frames
SEGMENT_PRINT_MIN_S = CONTRACT["segment_fingerprint_min_s"]


def titanet_print(running: Running, heard: np.ndarray, segment: dict[str, Any]) -> np.ndarray:
    """TitaNet's own unit embedding of a segment's samples, called directly."""
    audio = heard[round(segment["start_s"] * SAMPLE_RATE) : round(segment["end_s"] * SAMPLE_RATE)]
    embedding, _ = running.registry.embedding().infer_segment(audio)
    vector = embedding.detach().numpy().reshape(-1)
    return vector / np.linalg.norm(vector)


def assert_segment_prints(running: Running, samples: np.ndarray, body: dict[str, Any]) -> int:
    """Each segment of 1 s or more carries TitaNet's print of its own samples (rounded to 6
    places), each shorter one null; returns how many were printed."""
    heard = read_audio(wav_bytes(samples), max_audio_s=60)  # as the server decoded the upload
    printed = 0
    for segment in body["segments"]:
        fingerprint = segment["fingerprint"]
        if segment["end_s"] - segment["start_s"] < SEGMENT_PRINT_MIN_S:
            assert fingerprint is None, segment
            continue
        assert len(fingerprint) == CONTRACT["fingerprint_dim"]
        assert np.linalg.norm(fingerprint) == pytest.approx(1.0, abs=1e-5)
        assert fingerprint == pytest.approx(titanet_print(running, heard, segment), abs=2e-6)
        printed += 1
    return printed


async def test_released_names_load_lazily_from_the_hub_cache(
    start_server: Factory, tiny_models: TinyModels
) -> None:
    running = await start_server()
    health = await running.get("/health")
    assert {k: m["loaded"] for k, m in health["models"].items()} == {
        "asr": False,
        "diarization": False,
        "embedding": False,
    }
    assert health["gpu_memory"] is None  # torch sees no CUDA device here

    asr = running.registry.asr()
    diarizer = running.registry.diarization()
    embedder = running.registry.embedding()
    assert type(asr) is EncDecRNNTBPEModel  # ASRModel.from_pretrained resolved the class
    assert asr.cfg.decoding.model_type == "tdt"
    assert isinstance(diarizer, SortformerEncLabelModel)
    assert diarizer.streaming_mode
    preset = {k: getattr(diarizer.sortformer_modules, k) for k in STREAMING_PRESET}
    assert preset == STREAMING_PRESET
    assert isinstance(embedder, EncDecSpeakerLabelModel)
    assert not any(m.training for m in (asr, diarizer, embedder))
    health = await running.get("/health")
    assert all(m["loaded"] for m in health["models"].values())


async def test_a_local_nemo_file_is_restored_too(tiny_models: TinyModels) -> None:
    name = ServerConfig().asr_model
    folder = tiny_models.hf_home / "hub" / f"models--{name.replace('/', '--')}" / "snapshots"
    (path,) = folder.glob("*/*.nemo")
    config = replace(ServerConfig(), device="cpu", asr_model=str(path))
    model = ModelRegistry(nemo_loaders(config)).asr()
    assert type(model) is EncDecRNNTBPEModel
    assert model.tokenizer.vocab_size == 48


def expected_words(duration: float, word: str, offset: float = 0.0) -> list[dict[str, Any]]:
    """The forced transducer's words for `duration` seconds of audio starting at `offset`."""
    count = math.ceil(duration / WORD_GAP_S - 1e-9)
    return [
        {
            "word": word,
            "start": round(offset + k * WORD_GAP_S, 3),
            "end": round(offset + min((k + 1) * WORD_GAP_S, duration), 3),
        }
        for k in range(count)
    ]


async def test_transcription_in_every_format(
    start_server: Factory, tiny_models: TinyModels
) -> None:
    assert tiny_models.frame_s == pytest.approx(FRAME_S)
    running = await start_server()
    audio = wav_bytes(speech_like(3.0))
    words = expected_words(3.0, tiny_models.word)  # 10 words, the last one cut at 3.0 s
    text = " ".join(w["word"] for w in words)

    assert await running.post("/v1/audio/transcriptions", audio) == (200, {"text": text})
    status, plain = await running.post("/v1/audio/transcriptions", audio, response_format="text")
    assert (status, plain) == (200, text + "\n")

    status, body = await running.post(
        "/v1/audio/transcriptions", audio, response_format="verbose_json", language="en"
    )
    assert status == 200
    assert body["words"] == words
    assert body["text"] == text
    assert body["duration"] == 3.0
    assert body["language"] == "en"
    assert body["segments"] == [{"id": 0, "start": 0.0, "end": 3.0, "text": text}]

    status, body = await running.post(
        "/v1/audio/transcriptions",
        audio,
        response_format="verbose_json",
        **{"timestamp_granularities[]": "segment"},
    )
    assert status == 200
    assert "words" not in body
    assert body["segments"][0]["text"] == text


async def test_real_speech_as_ogg_opus_reaches_the_model_as_its_wav_does(
    start_server: Factory, tmp_path: Path
) -> None:
    """The gateway sends a browser's webm/opus remuxed to Ogg/Opus (48 kHz): the container's
    libsndfile decodes it and soxr resamples it to the 16 kHz the model hears."""
    spoken = tmp_path / "speech.wav"
    subprocess.run(
        ["flite", "-voice", "slt", "-t", "Turn on the kitchen lights please", "-o", str(spoken)],
        check=True,
    )
    speech = read_audio(spoken.read_bytes(), max_audio_s=60)
    ogg = ogg_opus_bytes(speech)
    heard = read_audio(ogg, max_audio_s=60)
    assert len(heard) == len(speech)
    assert np.corrcoef(heard, speech)[0, 1] > 0.99  # the same speech, aligned to the sample

    running = await start_server()
    answers = [
        await running.post("/v1/audio/transcriptions", upload, response_format="verbose_json")
        for upload in (spoken.read_bytes(), ogg)
    ]
    assert [status for status, _ in answers] == [200, 200], answers
    from_wav, from_ogg = (body for _, body in answers)
    assert from_ogg["words"] == from_wav["words"]
    assert from_ogg["duration"] == from_wav["duration"] == round(len(speech) / SAMPLE_RATE, 3)


async def test_long_input_is_transcribed_window_by_window(
    start_server: Factory, tiny_models: TinyModels
) -> None:
    samples = speech_like(10.0, pauses=((3.0, 3.6), (6.4, 7.0)))
    running = await start_server(asr_window_s=4.0, window_search_s=1.5)
    windows = plan_windows(samples, window_s=4.0, search_s=1.5)
    assert len(windows) == 3
    assert 3.0 <= windows[1].start_s <= 3.6  # cut inside the pause
    assert 6.4 <= windows[2].start_s <= 7.0

    status, body = await running.post(
        "/v1/audio/transcriptions", wav_bytes(samples), response_format="verbose_json"
    )
    assert status == 200
    expected = []
    for window in windows:
        length = len(window.slice(samples)) / SAMPLE_RATE
        expected += expected_words(length, tiny_models.word, offset=window.start_s)
    assert body["words"] == expected
    assert body["duration"] == 10.0
    assert body["text"] == " ".join([tiny_models.word] * len(expected))


async def test_the_tiniest_inputs_get_answers_not_errors(
    start_server: Factory, tiny_models: TinyModels
) -> None:
    """One sample or 10 ms: NeMo copes, and so must the server (a 500 would have the gateway
    restart the container as wedged)."""
    running = await start_server()
    one_sample, ten_ms = wav_bytes(speech_like(1 / SAMPLE_RATE)), wav_bytes(speech_like(0.01))
    assert await running.post("/v1/audio/transcriptions", one_sample) == (200, {"text": ""})
    status, body = await running.post(
        "/v1/audio/transcriptions", ten_ms, response_format="verbose_json"
    )
    assert status == 200
    assert body["words"] == [{"word": tiny_models.word, "start": 0.0, "end": 0.01}]
    status, body = await running.post("/v1/audio/diarize-chunk", one_sample)
    assert status == 200
    assert (body["segments"], body["fingerprints"], body["speakers_detected"]) == ([], {}, 0)
    status, body = await running.post("/v1/audio/diarize-chunk", ten_ms)
    assert status == 200
    assert [(s["start_s"], s["end_s"], s["fingerprint"]) for s in body["segments"]] == [
        (0.0, 0.01, None)  # far under a second: no print of its own
    ]
    assert body["fingerprints"] == {"speaker_0": None}


async def test_too_much_audio_is_refused_before_any_model_runs(start_server: Factory) -> None:
    running = await start_server(max_audio_s=2.0, max_upload_bytes=200_000)
    status, body = await running.post("/v1/audio/transcriptions", wav_bytes(speech_like(3.0)))
    assert (status, body) == (413, {"detail": "audio is 3 s; the maximum is 2 s"})
    status, body = await running.post("/v1/audio/diarize-chunk", wav_bytes(speech_like(7.0)))
    assert (status, body) == (413, {"detail": "upload larger than 200000 bytes"})
    assert not any(running.registry.loaded.values())


async def test_diarize_segments_carry_the_tensor_confidence(
    start_server: Factory, tiny_models: TinyModels
) -> None:
    running = await start_server()
    status, body = await running.post("/v1/audio/diarize", wav_bytes(speech_like(4.0)))
    assert status == 200
    confidence = round(tiny_models.speaker_probs[0], 4)
    (segment,) = body.pop("segments")
    # NeMo ends a segment within one 80 ms frame of the audio's end (3.03 s for 3 s, 3.99 s
    # for 4 s); the server keeps it inside the audio. No segment print on the whole-file route.
    assert 4.0 - FRAME_S < segment.pop("end_s") <= 4.0
    assert segment == {"start_s": 0.0, "speaker": "speaker_0", "confidence": confidence}
    assert body == {
        "duration": 4.0,
        "speakers_detected": 1,
        "models": {"diarization": "nvidia/diar_streaming_sortformer_4spk-v2"},
    }
    assert not running.registry.loaded["embedding"]  # one window: no fingerprint needed


async def test_the_offline_sortformer_v1_and_overlapping_speakers(
    start_server: Factory, tiny_models: TinyModels
) -> None:
    """v1 has no streaming preset; its slots 0 and 2 speak at once throughout, so NeMo's lines
    name speaker_0 and speaker_2, each confidence comes from its own tensor column, and no
    speech is clean enough for a fingerprint."""
    running = await start_server(diarization_model=SORTFORMER_V1, own_loaders=True)
    status, body = await running.post("/v1/audio/diarize-chunk", wav_bytes(speech_like(3.0)))
    assert status == 200
    diarizer = running.registry.diarization()
    assert isinstance(diarizer, SortformerEncLabelModel)
    assert not diarizer.streaming_mode
    assert diarizer.sortformer_modules.chunk_len != STREAMING_PRESET["chunk_len"]
    slot0, slot2 = (round(1 / (1 + math.exp(-V1_SPEAKER_LOGITS[k])), 4) for k in (0, 2))
    # Renumbered by first appearance: slot 2 becomes speaker_1.
    assert [(s["start_s"], s["speaker"], s["confidence"]) for s in body["segments"]] == [
        (0.0, "speaker_0", slot0),
        (0.0, "speaker_1", slot2),
    ]
    assert body["speakers_detected"] == 2
    assert body["fingerprints"] == {"speaker_0": None, "speaker_1": None}
    assert body["fingerprint_speech_s"] == {"speaker_0": 0.0, "speaker_1": 0.0}
    assert body["models"]["diarization"] == SORTFORMER_V1


async def test_turn_taking_speakers_through_nemo_post_processing(
    start_server: Factory, tiny_models: TinyModels
) -> None:
    running = await start_server(diarization_model=SORTFORMER_TURNS, own_loaders=True)
    samples = dialogue()
    status, body = await running.post("/v1/audio/diarize-chunk", wav_bytes(samples))
    assert status == 200

    # NeMo's own lines come grouped by speaker, not by time: the server sorts them.
    model = running.registry.diarization()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "dialogue.wav"
        path.write_bytes(wav_bytes(samples))
        lines, _ = model.diarize(audio=str(path), include_tensor_outputs=True, verbose=False)
    speakers_in_order = [line.split()[2] for line in lines[0]]
    assert speakers_in_order == sorted(speakers_in_order)
    starts = [s["start_s"] for s in body["segments"]]
    assert starts == sorted(starts)

    # Each turn is found: one speaker's segments cover most of it, with a high confidence
    # from that speaker's own column. Slivers at the turn edges may come and go (and may name
    # speaker_0 first), so speakers are told apart by their turns, not by number.
    who = []
    for start, end in sorted(span for spans in TURNS.values() for span in spans):
        overlap: dict[str, float] = {}
        for s in body["segments"]:
            if s["start_s"] < end and s["end_s"] > start:
                seconds = min(s["end_s"], end) - max(s["start_s"], start)
                overlap[s["speaker"]] = overlap.get(s["speaker"], 0.0) + seconds
        speaker = max(overlap, key=lambda k: overlap[k])
        assert overlap[speaker] > 0.8 * (end - start), (start, end, body["segments"])
        longest = max(
            (s for s in body["segments"] if s["speaker"] == speaker and s["start_s"] < end),
            key=lambda s: min(s["end_s"], end) - max(s["start_s"], start),
        )
        assert longest["confidence"] > 0.9
        who.append(speaker)
    assert who[0] == who[2] != who[1] == who[3]  # A, B, A, B
    assert body["speakers_detected"] == 2

    # Clean speech per speaker: about the time each speaks alone, so both get a print.
    for speaker, slot in zip(who[:2], (0, 1), strict=True):  # A speaks 5 s alone, B 4 s
        alone = sum(end - start for start, end in TURNS[slot])
        assert body["fingerprint_speech_s"][speaker] == pytest.approx(alone, abs=0.5)
    prints = [np.array(body["fingerprints"][k]) for k in who[:2]]
    assert all(p.shape == (192,) for p in prints)
    # Random weights barely tell voices apart (cosine ~0.99998), but each print is its own.
    assert np.abs(prints[0] - prints[1]).max() > 1e-4

    # Every turn of 1 s or more has TitaNet's print of its own samples; slivers get null.
    assert assert_segment_prints(running, samples, body) >= 4


async def test_diarize_chunk_fingerprints_come_from_titanet(
    start_server: Factory, tiny_models: TinyModels
) -> None:
    running = await start_server()
    samples = speech_like(4.0, seed=1)
    status, body = await running.post("/v1/audio/diarize-chunk", wav_bytes(samples))
    assert status == 200
    # The shape the gateway relies on (tests/contracts/diarize_chunk.json).
    assert set(CONTRACT["required"]) <= set(body)
    assert all(set(CONTRACT["segment_required"]) <= set(s) for s in body["segments"])
    assert body["speakers_detected"] == 1
    assert body["models"] == {
        "diarization": "nvidia/diar_streaming_sortformer_4spk-v2",
        "embedding": "nvidia/speakerverification_en_titanet_large",
    }
    (segment,) = body["segments"]
    # Clean speech: frames where slot 0 alone is active (all of them), within its segment.
    assert body["fingerprint_speech_s"] == {"speaker_0": segment["end_s"]}
    fingerprint = np.array(body["fingerprints"]["speaker_0"])
    assert fingerprint.shape == (tiny_models.embedding_dim,) == (CONTRACT["fingerprint_dim"],)
    assert np.linalg.norm(fingerprint) == pytest.approx(1.0, abs=1e-5)

    # The same voice print as TitaNet gives for the clean speech directly, normalised.
    clean = samples[: int(segment["end_s"] * SAMPLE_RATE)]
    direct, _ = running.registry.embedding().infer_segment(clean)
    direct = direct.detach().numpy().reshape(-1)
    assert fingerprint == pytest.approx(direct / np.linalg.norm(direct), abs=1e-5)
    # The segment is all of that speech, so its own print is the same.
    assert assert_segment_prints(running, samples, body) == 1
    assert segment["fingerprint"] == pytest.approx(fingerprint, abs=2e-6)


async def test_short_speech_gets_no_fingerprint(start_server: Factory) -> None:
    running = await start_server()
    status, body = await running.post("/v1/audio/diarize-chunk", wav_bytes(speech_like(1.5)))
    assert status == 200
    assert body["fingerprints"] == {"speaker_0": None}  # under 2 s of clean speech: flagged
    assert body["fingerprint_speech_s"] == {"speaker_0": 1.5}
    # The 1.5 s segment is long enough for a print of its own, which the gateway can name.
    assert assert_segment_prints(running, speech_like(1.5), body) == 1


async def test_long_input_is_diarized_window_by_window_and_linked(
    start_server: Factory, tiny_models: TinyModels
) -> None:
    samples = speech_like(10.0, pauses=((3.0, 3.6), (6.4, 7.0)), seed=2)
    running = await start_server(diar_window_s=4.0, window_search_s=1.5)
    windows = plan_windows(samples, window_s=4.0, search_s=1.5)
    status, body = await running.post("/v1/audio/diarize-chunk", wav_bytes(samples))
    assert status == 200
    confidence = round(tiny_models.speaker_probs[0], 4)
    # Slot 0 speaks through each window; TitaNet's prints of the windows link them to one voice.
    segments = body["segments"]
    assert [(s["start_s"], s["speaker"], s["confidence"]) for s in segments] == [
        (round(w.start_s, 3), "speaker_0", confidence) for w in windows
    ]
    for segment, window in zip(segments, windows, strict=True):
        assert window.end_s - FRAME_S < segment["end_s"] <= round(window.end_s, 3)
    assert body["speakers_detected"] == 1
    assert len(body["fingerprints"]["speaker_0"]) == 192
    assert body["fingerprint_speech_s"]["speaker_0"] == pytest.approx(10.0, abs=0.01)
    # Each window's segment keeps the print of its own samples through the linking.
    assert assert_segment_prints(running, samples, body) == 3
    prints = [np.array(s["fingerprint"]) for s in segments]
    assert min(np.abs(a - b).max() for a, b in itertools.combinations(prints, 2)) > 1e-4
