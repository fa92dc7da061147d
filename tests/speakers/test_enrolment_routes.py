"""Enrolled speakers on the gateway against the simulator: real voices, real HTTP, files."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import aiohttp
import numpy as np
import pytest

from spark_gateway.routes.speaker_library import MAX_CLIP_S
from tests.gateway.conftest import GatewayFactory, RunningGateway
from tests.paths import CONTRACTS
from tests.sim import SimCluster
from tests.speakers.test_routes import post
from tests.speakers.voices import (
    Conversation,
    RefTurn,
    build_conversation,
    enrolment_clip,
    enrolment_files,
    voice,
    wav_bytes,
)

# Allison enrols; June, a woman on the same telephone channel and the voice nearest hers, is
# the stranger.
ENROLLED, STRANGER = "ALLISON", "JUNE"


async def enrol(gateway: RunningGateway, name: str, *clips: np.ndarray | Path,
                replace: str | None = None) -> aiohttp.ClientResponse:  # fmt: skip
    form = aiohttp.FormData()
    form.add_field("name", name)
    if replace is not None:
        form.add_field("replace", replace)
    for n, clip in enumerate(clips):
        if isinstance(clip, Path):  # a recording as the user has it (8 kHz FLAC)
            form.add_field("file", clip.read_bytes(), filename=clip.name,
                           content_type="audio/flac")  # fmt: skip
        else:
            form.add_field("file", wav_bytes(clip), filename=f"clip{n}.wav",
                           content_type="audio/wav")  # fmt: skip
    async with aiohttp.ClientSession(headers=gateway.headers()) as session:
        resp = await session.post(gateway.url + "/api/speakers", data=form)
        await resp.read()
        return resp


async def call(gateway: RunningGateway, method: str, path: str, body: Any = None
               ) -> aiohttp.ClientResponse:  # fmt: skip
    async with aiohttp.ClientSession(headers=gateway.headers()) as session:
        resp = await session.request(method, gateway.url + path, json=body)
        await resp.read()
        return resp


async def gateway_with_alice(
    sim: SimCluster, start_gateway: GatewayFactory
) -> tuple[RunningGateway, dict[str, Any]]:
    """A gateway naming at the stand-in's threshold, with Allison enrolled as "Alice" from her
    three recordings (never heard in a conversation)."""
    gateway = await start_gateway(parakeet_url=sim.parakeet.url)
    resp = await enrol(gateway, "Alice", *enrolment_files(ENROLLED))
    assert resp.status == 201, await resp.text()
    alice: dict[str, Any] = await resp.json()
    return gateway, alice


def conversation_wav() -> tuple[Conversation, bytes]:
    """Allison and June (nobody enrolled her) taking turns for 24 s."""
    conversation = build_conversation([ENROLLED, STRANGER], duration_s=24.0, seed=4,
                                      keep_back=0.35)  # fmt: skip
    return conversation, wav_bytes(conversation.samples)


async def test_enrolled_voice_is_named_in_transcripts(
    sim: SimCluster, start_gateway: GatewayFactory, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    gateway, alice = await gateway_with_alice(sim, start_gateway)
    contract = json.loads((CONTRACTS / "speakers.json").read_text())
    assert set(contract["enrolled"]) <= set(alice)
    assert alice["name"] == "Alice"
    assert alice["clips"] == 3
    assert alice["speech_s"] >= 20
    # One file in the add-on's data folder, readable by the add-on only; no vector in the API.
    files = list((tmp_path / "data" / "voiceprints").iterdir())
    assert [f.name for f in files] == [f"{alice['id']}.json"]
    assert files[0].stat().st_mode & 0o077 == 0
    listing = await (await call(gateway, "GET", "/api/speakers")).json()
    assert listing == {"speakers": [alice]}

    conversation, data = conversation_wav()
    resp = await post(gateway, "/api/audio/transcribe-with-speakers", data)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    for key in contract["transcript_required"]:
        assert key in body
    assert "Alice" in body["speakers"]
    assert body["identified"]["Alice"]["id"] == alice["id"]
    assert 0 < body["identified"]["Alice"]["confidence"] <= 1
    strangers = [s for s in body["speakers"] if s != "Alice"]
    assert strangers
    assert all(s.startswith("Speaker_") for s in strangers)
    # Alice's turns carry her name; the stranger's speech is never given it.
    for turn in conversation.turns:
        covering = [s for s in body["segments"]
                    if min(s["end_ms"] / 1000, turn.end) - max(s["start_ms"] / 1000, turn.start)
                    > 0.5 * (turn.end - turn.start)]  # fmt: skip
        for segment in covering:
            if turn.speaker == STRANGER:
                assert segment["speaker"] != "Alice", segment
            else:
                assert segment["speaker"].rstrip("?") == "Alice", segment
    # Text formats carry the name too (SRT and VTT render the same labels: test_formats).
    resp = await post(gateway, "/api/audio/transcribe-with-speakers", data,
                      fields={"response_format": "text"})  # fmt: skip
    assert resp.status == 200
    assert "] Alice" in (await resp.text()).replace("Alice?", "Alice")

    # Voiceprints are personal data: neither the name nor any part of the print is logged.
    vector = json.loads(files[0].read_text())["vector"]
    logged = caplog.text
    assert "Alice" not in logged
    assert not any(f"{abs(v):.6f}"[:-1] in logged for v in vector[:16])  # 5 decimals, cut


async def test_who_spoke_and_forgetting(
    sim: SimCluster, start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gateway, alice = await gateway_with_alice(sim, start_gateway)

    # Who spoke: the enrolled voice by name (5 s the enrolment never heard), a stranger as
    # nobody.
    command = wav_bytes(voice(ENROLLED)[: 5 * 16000])
    who = await (await post(gateway, "/api/speakers/identify", command)).json()
    assert who["speaker"] == {"id": alice["id"], "name": "Alice"}
    assert 0 < who["confidence"] <= 1
    stranger = wav_bytes(voice(STRANGER)[: 5 * 16000])
    nobody = await (await post(gateway, "/api/speakers/identify", stranger)).json()
    assert nobody == {"speaker": None, "confidence": None}

    # Forgetting deletes the file, and the name is gone from transcripts.
    resp = await call(gateway, "DELETE", f"/api/speakers/{alice['id']}")
    assert resp.status == 200
    assert (await resp.json())["deleted"]["id"] == alice["id"]
    assert list((tmp_path / "data" / "voiceprints").iterdir()) == []
    _, data = conversation_wav()
    body = await (await post(gateway, "/api/audio/transcribe-with-speakers", data)).json()
    assert "Alice" not in body["speakers"]
    assert body["identified"] == {}


async def test_enrolment_errors(
    sim: SimCluster, start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gateway = await start_gateway(parakeet_url=sim.parakeet.url)
    clip = enrolment_clip(ENROLLED)
    notes = tmp_path / "notes.flac"
    notes.write_text("not audio at all\n" * 50)
    # Which clip is not audio is named, as for clips of another voice.
    resp = await enrol(gateway, "Alice", clip, notes)
    error = (await resp.json())["error"]
    assert (resp.status, error["code"], error["param"]) == (400, "invalid_audio", "file[1]")
    assert error["message"].startswith("the audio could not be decoded")
    (tmp_path / "empty.flac").write_bytes(b"")
    resp = await enrol(gateway, "Alice", clip, clip, tmp_path / "empty.flac")
    error = (await resp.json())["error"]
    assert (resp.status, error["code"], error["param"]) == (400, "empty_audio", "file[2]")
    cases = [
        (await enrol(gateway, "", clip), 400, "invalid_name"),
        (await enrol(gateway, "x" * 65, clip), 400, "invalid_name"),
        (await enrol(gateway, "\u202eecilA", clip), 400, "invalid_name"),  # a bidi override
        (await enrol(gateway, "\u200d\ufe0f", clip), 400, "invalid_name"),  # nothing shows
        (await enrol(gateway, "Quiet", np.zeros(3 * 16000, np.int16)), 400, "too_little_speech"),
        (await enrol(gateway, "Ann\u00a0\tLee", clip), 400, "invalid_name"),  # a tab still
        (await enrol(gateway, "Many", *([clip[: 16000 * 2]] * 11)), 400, "too_many_clips"),
        (await call(gateway, "DELETE", "/api/speakers/0123456789abcdef"), 404, "unknown_speaker"),
        (await call(gateway, "DELETE", "/api/speakers/..%2F..%2Fx"), 404, "unknown_speaker"),
        (await post(gateway, "/api/speakers/identify", b"not audio" * 20), 400, "invalid_audio"),
    ]
    for resp, status, code in cases:
        assert resp.status == status, code
        assert (await resp.json())["error"]["code"] == code
    async with aiohttp.ClientSession() as session:  # no key
        assert (await session.get(gateway.url + "/api/speakers")).status == 401
    assert (await (await call(gateway, "GET", "/api/speakers")).json()) == {"speakers": []}
    # A clip over the cap, or without speech, is named by `param`, its message as HA reads it.
    refusals = json.loads((CONTRACTS / "speakers.json").read_text())["enrol_clip_refusals"]
    long_clip = np.zeros(int(MAX_CLIP_S + 1) * 16000, np.int16)
    for clips, refusal in (
        ((clip, long_clip), refusals["clip_too_long"]),
        ((clip, np.zeros(3 * 16000, np.int16)), refusals["too_little_speech"]),
    ):
        resp = await enrol(gateway, "Alice", *clips)
        error = (await resp.json())["error"]
        assert (resp.status, error["code"], error["param"]) == (
            refusal["status"], refusal["code"], "file[1]")  # fmt: skip
        assert re.fullmatch(refusal["message"], error["message"]), error
        if refusal["code"] == "clip_too_long":  # the cap, in seconds, is in the words
            assert error["message"] == refusal["example"].replace("300", f"{MAX_CLIP_S:g}")


async def test_names_with_unicode_spaces_are_folded(
    sim: SimCluster, start_gateway: GatewayFactory
) -> None:
    """A no-break space (pasted from a document) enrols the person with a plain one; renaming
    with an ideographic space, and enrolling the plain name again, find the same person."""
    gateway = await start_gateway(parakeet_url=sim.parakeet.url)
    allison = enrolment_files(ENROLLED)
    resp = await enrol(gateway, "\u00a0Alice\u00a0\u00a0Smith ", allison[0])
    assert resp.status == 201, await resp.text()
    alice = await resp.json()
    assert alice["name"] == "Alice Smith"
    more = await (await enrol(gateway, "alice smith", allison[1])).json()
    assert (more["id"], more["clips"]) == (alice["id"], 2)
    resp = await call(gateway, "PATCH", f"/api/speakers/{alice['id']}",
                      {"name": "\u5c71\u7530\u3000\u82b1\u5b50"})  # fmt: skip
    assert (resp.status, (await resp.json())["name"]) == (200, "\u5c71\u7530 \u82b1\u5b50")
    listing = await (await call(gateway, "GET", "/api/speakers")).json()
    assert [p["name"] for p in listing["speakers"]] == ["\u5c71\u7530 \u82b1\u5b50"]


async def test_a_name_enrolled_again_takes_only_its_own_voice(
    sim: SimCluster, start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    """Clips of someone else (June) never reach Allison's print; `replace` starts it again."""
    mismatch = json.loads((CONTRACTS / "speakers.json").read_text())["enrol_voice_mismatch"]
    gateway = await start_gateway(parakeet_url=sim.parakeet.url)
    allison, june = enrolment_files(ENROLLED), enrolment_files(STRANGER)
    resp = await enrol(gateway, "Alice", *allison[:2])
    assert resp.status == 201
    alice = await resp.json()
    stored = tmp_path / "data" / "voiceprints" / f"{alice['id']}.json"
    before = stored.read_bytes()

    # June's recordings under Alice's name (any case): refused, the print untouched.
    resp = await enrol(gateway, "alice", *june[:2])
    assert resp.status == mismatch["enrolled_voice_status"]
    error = (await resp.json())["error"]
    assert error["code"] == mismatch["code"]
    assert "replace=true" in error["message"]
    assert stored.read_bytes() == before
    # Another recording of Allison is added to her print.
    resp = await enrol(gateway, "Alice", allison[2])
    assert resp.status == 201
    assert {**await resp.json(), "updated": None} == {**alice, "clips": 3, "updated": None,
                                                      "speech_s": ANY}  # fmt: skip

    # One request whose clips are not one voice: the odd clip is named, nothing is stored.
    carlo, irina = enrolment_files("CARLO"), enrolment_files("IRINA")
    for clips, odd, message in [
        ((carlo[0], carlo[1], june[0]), 2, "clip 3 does not sound like the other clips"),
        ((irina[0], june[0]), 1, "clip 2 does not sound like clip 1"),
    ]:
        resp = await enrol(gateway, "Someone", *clips)
        assert resp.status == mismatch["odd_clip_status"]
        error = (await resp.json())["error"]
        assert error["code"] == mismatch["code"]
        assert error["param"] == mismatch["odd_clip_param"].replace("<0-based index>", str(odd))
        assert error["message"].startswith(message), error
    # Allison under a second name: refused, naming the person she is enrolled as.
    resp = await enrol(gateway, "Allison", allison[0])
    assert resp.status == mismatch["voice_already_enrolled_status"]
    error = (await resp.json())["error"]
    assert error["code"] == mismatch["voice_already_enrolled_code"]
    assert f"Alice (id {alice['id']})" in error["message"]
    listing = await (await call(gateway, "GET", "/api/speakers")).json()
    assert [p["name"] for p in listing["speakers"]] == ["Alice"]

    # `replace=true` starts the print again from these clips alone, under the same id.
    resp = await enrol(gateway, "Alice", *june, **{mismatch["replace_field"]: "TRUE"})
    assert resp.status == 201
    replaced = await resp.json()
    assert (replaced["id"], replaced["clips"], replaced["created"]) == (
        alice["id"], 3, alice["created"])  # fmt: skip
    command = wav_bytes(voice(STRANGER)[: 5 * 16000])
    who = await (await post(gateway, "/api/speakers/identify", command)).json()
    assert who["speaker"] == {"id": alice["id"], "name": "Alice"}
    command = wav_bytes(voice(ENROLLED)[: 5 * 16000])
    who = await (await post(gateway, "/api/speakers/identify", command)).json()
    assert who["speaker"] is None

    resp = await enrol(gateway, "Alice", allison[0], replace="maybe")
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == "replace"


async def test_renaming_keeps_the_voice(
    sim: SimCluster, start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gateway, alice = await gateway_with_alice(sim, start_gateway)
    stored = tmp_path / "data" / "voiceprints" / f"{alice['id']}.json"
    vector = json.loads(stored.read_text())["vector"]
    resp = await call(gateway, "PATCH", f"/api/speakers/{alice['id']}", {"name": " Alice Smith "})
    assert resp.status == 200
    renamed = await resp.json()
    assert {**renamed, "updated": None} == {**alice, "name": "Alice Smith", "updated": None}
    assert json.loads(stored.read_text())["vector"] == vector
    # Who spoke, and enrolling more clips, now go by the new name.
    command = wav_bytes(voice(ENROLLED)[: 5 * 16000])
    who = await (await post(gateway, "/api/speakers/identify", command)).json()
    assert who["speaker"] == {"id": alice["id"], "name": "Alice Smith"}
    more = await enrol(gateway, "alice smith", enrolment_clip(ENROLLED))
    assert ((await more.json())["id"], (await more.json())["clips"]) == (alice["id"], 4)

    june = await (await enrol(gateway, "June", *enrolment_files(STRANGER)[:1])).json()
    cases = [
        (f"/api/speakers/{june['id']}", {"name": "ALICE SMITH"}, 409, "name_taken"),
        (f"/api/speakers/{june['id']}", {"name": ""}, 400, "invalid_name"),
        (f"/api/speakers/{june['id']}", {"name": 7}, 400, "invalid_name"),
        (f"/api/speakers/{june['id']}", {"name": "June\u0007"}, 400, "invalid_name"),
        (f"/api/speakers/{june['id']}", ["June"], 400, "invalid_json"),
        ("/api/speakers/0123456789abcdef", {"name": "Nobody"}, 404, "unknown_speaker"),
        ("/api/speakers/..%2F..%2Fx", {"name": "Nobody"}, 404, "unknown_speaker"),
    ]
    for path, body, status, code in cases:
        resp = await call(gateway, "PATCH", path, body)
        assert (resp.status, (await resp.json())["error"]["code"]) == (status, code), body
    # A person may change only the case of their own name.
    resp = await call(gateway, "PATCH", f"/api/speakers/{june['id']}", {"name": "JUNE"})
    assert (await resp.json())["name"] == "JUNE"
    # An emoji written with joiners (ZWJ, a variation selector) is a name like any other.
    emoji_name = "Zo\u00eb \U0001f469\u200d\U0001f4bb \u2764\ufe0f\u200d\U0001f525"
    resp = await call(gateway, "PATCH", f"/api/speakers/{june['id']}", {"name": emoji_name})
    assert (resp.status, (await resp.json())["name"]) == (200, emoji_name)


async def test_a_person_folded_into_anothers_slot_keeps_their_name(
    sim: SimCluster, start_gateway: GatewayFactory
) -> None:
    """Five enrolled people in one minute: the diarizer has four slots and puts Irina into
    June's, so naming whole slots could never show her. Each segment's own print does."""
    people = ["ALLISON", "CARLO", "JUNE", "IRINA", "PAOLA"]
    gateway = await start_gateway(parakeet_url=sim.parakeet.url)
    for person in people:
        resp = await enrol(gateway, person.title(), *enrolment_files(person))
        assert resp.status == 201, await resp.text()
    conversation = build_conversation(people, duration_s=60.0, seed=100, keep_back=0.35)
    resp = await post(gateway, "/api/audio/transcribe-with-speakers",
                      wav_bytes(conversation.samples))  # fmt: skip
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert sorted(body["identified"]) == sorted(p.title() for p in people)

    def shown(turn: RefTurn) -> str:
        """The label covering most of a true turn."""
        cover: dict[str, float] = {}
        for s in body["segments"]:
            overlap = min(s["end_ms"] / 1000, turn.end) - max(s["start_ms"] / 1000, turn.start)
            if overlap > 0:
                cover[s["speaker"]] = cover.get(s["speaker"], 0.0) + overlap
        return max(cover, key=lambda label: cover[label])

    irina = [t for t in conversation.turns if t.speaker == "IRINA"]
    longest = max(irina, key=lambda t: t.end - t.start)
    assert shown(longest) == "Irina"
    # Most turns carry their own speaker's name.
    right = sum(shown(t) == t.speaker.title() for t in conversation.turns)
    assert right > len(conversation.turns) * 3 // 4
