"""The HA action `transcribe_with_speakers`: real HA, real gateway, simulator behind it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import numpy as np
import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spark_control.const import CONF_GATEWAY_API_KEY, CONF_GATEWAY_URL, DOMAIN
from custom_components.spark_control.speakers import (
    ACTION_ENROLL_SPEAKER,
    ACTION_FORGET_SPEAKER,
    ACTION_LIST_SPEAKERS,
    ACTION_RENAME_SPEAKER,
    ATTR_REPLACE,
    CLIP_LIMIT,
    ODD_CLIP,
)
from custom_components.spark_control.transcribe import (
    ACTION_TRANSCRIBE_WITH_SPEAKERS,
    async_setup_transcribe_services,
    resolve_media_file,
)
from spark_gateway.speakers.voiceprints import MAX_VOICEPRINTS
from tests.gateway.conftest import API_KEY, GatewayFactory
from tests.paths import CONTRACTS
from tests.sim import SimCluster
from tests.speakers.voices import build_conversation, enrolment_files, wav_bytes


def entry_for(hass: HomeAssistant, url: str | None, key: str | None = API_KEY) -> MockConfigEntry:
    data = {CONF_GATEWAY_URL: url, CONF_GATEWAY_API_KEY: key} if url else {}
    entry = MockConfigEntry(domain=DOMAIN, title="Lab", data=data)
    entry.add_to_hass(hass)
    return entry


async def call(hass: HomeAssistant, entry: MockConfigEntry, file: str) -> dict[str, object]:
    result = await hass.services.async_call(
        DOMAIN, ACTION_TRANSCRIBE_WITH_SPEAKERS, {"cluster": entry.entry_id, "file": file},
        blocking=True, return_response=True,
    )  # fmt: skip
    assert isinstance(result, dict)
    return result


async def speaker_action(
    hass: HomeAssistant, action: str, entry: MockConfigEntry, **data: object
) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN, action, {"cluster": entry.entry_id, **data}, blocking=True, return_response=True
    )
    assert isinstance(response, dict)
    return response


async def list_speakers(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, Any]:
    return await speaker_action(hass, ACTION_LIST_SPEAKERS, entry)


async def test_meeting_from_media_folder(
    hass: HomeAssistant, tmp_path: Path, sim: SimCluster, start_gateway: GatewayFactory
) -> None:
    gateway = await start_gateway(parakeet_url=sim.parakeet.url)
    (tmp_path / "meetings").mkdir()
    # 45 s: the simulator's GE2E stand-in needs several turns per voice (14 s came out as one).
    conversation = build_conversation(["FEE078", "MEE009"], duration_s=45.0, seed=1)
    (tmp_path / "meetings" / "standup.wav").write_bytes(wav_bytes(conversation.samples))
    hass.config.media_dirs = {"local": str(tmp_path)}
    async_setup_transcribe_services(hass)
    entry = entry_for(hass, gateway.url)
    result = await call(hass, entry, "media-source://media_source/local/meetings/standup.wav")
    assert result["speakers_detected"] == 2
    assert result["segments"]
    assert abs(float(result["duration"]) - conversation.duration) < 0.1  # type: ignore[arg-type]


async def test_bad_requests_are_clear_errors(
    hass: HomeAssistant, tmp_path: Path, start_gateway: GatewayFactory
) -> None:
    gateway = await start_gateway(parakeet_url=None)
    (tmp_path / "a.wav").write_bytes(
        wav_bytes(build_conversation(["FEE078"], duration_s=1.0).samples)
    )
    hass.config.media_dirs = {"local": str(tmp_path)}
    async_setup_transcribe_services(hass)
    unlinked = entry_for(hass, None)
    linked = entry_for(hass, gateway.url)
    wrong_key = entry_for(hass, gateway.url, key="sk-wrong")
    nowhere = entry_for(hass, "http://127.0.0.1:9")
    cases: list[tuple[MockConfigEntry, str, type[Exception], str]] = [
        (unlinked, "a.wav", ServiceValidationError, "gateway_not_linked"),
        (linked, "../etc/passwd", ServiceValidationError, "media_file_invalid"),
        (linked, "local/missing.wav", ServiceValidationError, "media_file_not_found"),
        (linked, "local/a\0.wav", ServiceValidationError, "media_file_invalid"),
        (linked, "local/" + "x" * 5000 + ".wav", ServiceValidationError, "media_file_invalid"),
        (linked, "local/" + "d/" * 600 + "a.wav", ServiceValidationError, "media_file_invalid"),
        (wrong_key, "a.wav", HomeAssistantError, "gateway_error"),
        (linked, "a.wav", HomeAssistantError, "gateway_error"),  # parakeet not configured: 503
        (nowhere, "a.wav", HomeAssistantError, "gateway_unreachable"),
    ]
    for entry, file, kind, key in cases:
        with pytest.raises(kind) as info:
            await call(hass, entry, file)
        assert info.value.translation_key == key, (file, key)
    with pytest.raises(ServiceValidationError) as info:
        await hass.services.async_call(
            DOMAIN, ACTION_TRANSCRIBE_WITH_SPEAKERS, {"cluster": "nope", "file": "a.wav"},
            blocking=True, return_response=True,
        )  # fmt: skip
    assert info.value.translation_key == "invalid_cluster"


async def test_a_file_that_is_not_audio_is_the_users_error(
    hass: HomeAssistant, tmp_path: Path, sim: SimCluster, start_gateway: GatewayFactory
) -> None:
    """Found on the demo: a text file or an empty one in the media folder came back as the
    gateway's failure (HTTP 500 from HA's API); it is the user's input, named with the reason."""
    gateway = await start_gateway(parakeet_url=sim.parakeet.url)
    (tmp_path / "notes.wav").write_bytes(b"hello world\n" * 100)
    (tmp_path / "empty.wav").write_bytes(b"")
    hass.config.media_dirs = {"local": str(tmp_path)}
    async_setup_transcribe_services(hass)
    entry = entry_for(hass, gateway.url)
    for file, reason in (
        ("notes.wav", "the audio could not be decoded"),
        ("empty.wav", "the audio file is empty"),
    ):
        with pytest.raises(ServiceValidationError) as info:
            await call(hass, entry, f"local/{file}")
        assert info.value.translation_key == "media_file_not_audio"
        placeholders = info.value.translation_placeholders or {}
        assert placeholders["file"] == file
        assert placeholders["reason"].startswith(reason), placeholders
    assert sim.parakeet.transcriptions == 0


async def test_a_recording_over_the_add_ons_length_cap_says_so(
    hass: HomeAssistant, tmp_path: Path, sim: SimCluster, start_gateway: GatewayFactory
) -> None:
    """A meeting longer than the add-on's `max_audio_minutes` is the user's error with the
    gateway's reason (the cap), before any of it reaches Parakeet."""
    gateway = await start_gateway(parakeet_url=sim.parakeet.url, max_audio_seconds=6.0)
    (tmp_path / "meeting.wav").write_bytes(wav_bytes(np.zeros(10 * 16000, np.int16)))
    (tmp_path / "meeting.flac").write_bytes(enrolment_files("ALLISON")[0].read_bytes())
    hass.config.media_dirs = {"local": str(tmp_path)}
    async_setup_transcribe_services(hass)
    entry = entry_for(hass, gateway.url)
    for file in ("meeting.wav", "meeting.flac"):  # used as sent / decoded
        with pytest.raises(ServiceValidationError) as info:
            await call(hass, entry, f"local/{file}")
        assert info.value.translation_key == "media_file_not_audio"
        placeholders = info.value.translation_placeholders or {}
        assert placeholders["file"] == file
        assert "longer than the 6 s allowed" in placeholders["reason"], placeholders
    assert sim.parakeet.transcriptions == 0


def test_resolve_media_file(tmp_path: Path) -> None:
    dirs = {"local": str(tmp_path / "media"), "recordings": str(tmp_path / "rec")}
    assert resolve_media_file(dirs, "recordings/x.mp3") == (tmp_path / "rec" / "x.mp3").resolve()
    assert resolve_media_file(dirs, "sub/x.mp3") == (tmp_path / "media" / "sub" / "x.mp3").resolve()
    for bad in ("local/../../x", "/", "media-source://media_source/local/"):
        with pytest.raises(ServiceValidationError):
            resolve_media_file(dirs, bad)


@pytest.mark.usefixtures("enable_custom_integrations", "mock_async_zeroconf")
async def test_registered_by_the_integration(hass: HomeAssistant) -> None:
    """Set up through HA's loader; zeroconf (a manifest dependency) gets the harness's mock
    instead of opening real sockets and leaving its tasks behind."""
    from homeassistant.setup import async_setup_component

    assert await async_setup_component(hass, DOMAIN, {})
    assert hass.services.has_service(DOMAIN, ACTION_TRANSCRIBE_WITH_SPEAKERS)
    assert hass.services.has_service(DOMAIN, ACTION_ENROLL_SPEAKER)
    assert hass.services.has_service(DOMAIN, ACTION_FORGET_SPEAKER)
    assert hass.services.has_service(DOMAIN, ACTION_LIST_SPEAKERS)
    assert hass.services.has_service(DOMAIN, ACTION_RENAME_SPEAKER)


async def test_enroll_then_transcripts_name_the_person_and_forget(
    hass: HomeAssistant, tmp_path: Path, sim: SimCluster, start_gateway: GatewayFactory
) -> None:
    gateway = await start_gateway(parakeet_url=sim.parakeet.url)
    (tmp_path / "voices").mkdir()
    for n, clip in enumerate(enrolment_files("ALLISON")[:2], 1):  # recordings as they come
        (tmp_path / "voices" / f"alice-{n}.flac").write_bytes(clip.read_bytes())
    # (In 16 s the simulator's diarizer hears Allison and June as one voice: see
    # test_enrolment_routes for June as the stranger, over 24 s.)
    conversation = build_conversation(["ALLISON", "IRINA"], duration_s=16.0, seed=6)
    (tmp_path / "meeting.wav").write_bytes(wav_bytes(conversation.samples))
    hass.config.media_dirs = {"local": str(tmp_path)}
    async_setup_transcribe_services(hass)
    entry = entry_for(hass, gateway.url)
    enrolled = await hass.services.async_call(
        DOMAIN, ACTION_ENROLL_SPEAKER,
        {"cluster": entry.entry_id, "name": "Alice",
         "files": ["local/voices/alice-1.flac", "voices/alice-2.flac"]},
        blocking=True, return_response=True,
    )  # fmt: skip
    assert isinstance(enrolled, dict)
    assert enrolled["name"] == "Alice"
    assert enrolled["clips"] == 2
    result = await call(hass, entry, "local/meeting.wav")
    assert "Alice" in result["speakers"]  # type: ignore[operator]
    assert result["identified"] == {"Alice": {"id": enrolled["id"], "confidence": ANY}}
    assert any(s.startswith("Speaker_") for s in result["speakers"])  # type: ignore[union-attr]

    # The enrol answer lost, the list gives the id back (and never the voiceprint itself).
    listed = await list_speakers(hass, entry)
    assert listed == {"speakers": [enrolled]}
    assert set(enrolled) == {"id", "name", "clips", "speech_s", "created", "updated"}
    # An id pasted in upper case, with the spaces of a copy, is the same id.
    pasted = f" {listed['speakers'][0]['id'].upper()}\n"
    forget = {"cluster": entry.entry_id, "speaker_id": pasted}
    forgotten = await hass.services.async_call(
        DOMAIN, ACTION_FORGET_SPEAKER, forget, blocking=True, return_response=True
    )
    assert forgotten == {"deleted": enrolled}
    assert await list_speakers(hass, entry) == {"speakers": []}
    assert list((gateway.config.data_dir / "voiceprints").iterdir()) == []
    with pytest.raises(ServiceValidationError) as info:
        await hass.services.async_call(
            DOMAIN, ACTION_FORGET_SPEAKER, forget, blocking=True, return_response=True
        )
    assert info.value.translation_key == "unknown_speaker"
    with pytest.raises(ServiceValidationError) as info:
        await hass.services.async_call(
            DOMAIN, ACTION_ENROLL_SPEAKER,
            {"cluster": entry.entry_id, "name": "Nobody", "files": ["local/none.wav"]},
            blocking=True, return_response=True,
        )  # fmt: skip
    assert info.value.translation_key == "media_file_not_found"


async def enroll(hass: HomeAssistant, entry: MockConfigEntry, name: str, *files: str,
                 **extra: object) -> dict[str, Any]:  # fmt: skip
    return await speaker_action(hass, ACTION_ENROLL_SPEAKER, entry, name=name,
                                files=list(files), **extra)  # fmt: skip


async def test_enroll_refuses_another_voice_in_clear_words(
    hass: HomeAssistant, tmp_path: Path, sim: SimCluster, start_gateway: GatewayFactory
) -> None:
    """Another person's recording under an enrolled name, or among one person's recordings,
    is a translated error naming the person or the recording; `replace` starts over."""
    gateway = await start_gateway(parakeet_url=sim.parakeet.url)
    (tmp_path / "voices").mkdir()
    for voice_name in ("ALLISON", "JUNE"):
        for n, clip in enumerate(enrolment_files(voice_name)[:2], 1):
            (tmp_path / "voices" / f"{voice_name.lower()}-{n}.flac").write_bytes(clip.read_bytes())
    hass.config.media_dirs = {"local": str(tmp_path)}
    async_setup_transcribe_services(hass)
    entry = entry_for(hass, gateway.url)
    alice = await enroll(hass, entry, "Alice", "voices/allison-1.flac")

    with pytest.raises(ServiceValidationError) as info:
        await enroll(hass, entry, "Alice", "voices/june-1.flac")
    assert info.value.translation_key == "speaker_voice_mismatch"
    assert info.value.translation_placeholders == {"name": "Alice"}
    with pytest.raises(ServiceValidationError) as info:
        # (Of two recordings, the odd one is the one farther from the enrolled voice.)
        await enroll(hass, entry, "Alice", "local/voices/june-2.flac", "voices/allison-2.flac")
    assert info.value.translation_key == "speaker_recording_mismatch"
    assert info.value.translation_placeholders == {"file": "local/voices/june-2.flac"}
    # (What the action reads from the gateway's answer is the contract's.)
    mismatch = json.loads((CONTRACTS / "speakers.json").read_text())["enrol_voice_mismatch"]
    assert ODD_CLIP.fullmatch(mismatch["odd_clip_param"].replace("<0-based index>", "1"))
    assert mismatch["replace_field"] == ATTR_REPLACE
    assert await list_speakers(hass, entry) == {"speakers": [alice]}
    with pytest.raises(ServiceValidationError) as info:  # Allison's voice under another name
        await enroll(hass, entry, "Allison", "voices/allison-2.flac")
    assert info.value.translation_key == "speaker_voice_already_enrolled"
    assert info.value.translation_placeholders == {"name": "Allison", "reason": ANY}
    assert alice["id"] in info.value.translation_placeholders["reason"]

    replaced = await enroll(hass, entry, "Alice", "voices/june-1.flac", "voices/june-2.flac",
                            replace=True)  # fmt: skip
    assert (replaced["id"], replaced["clips"]) == (alice["id"], 2)
    assert await list_speakers(hass, entry) == {"speakers": [replaced]}


async def test_rename_speaker(
    hass: HomeAssistant, tmp_path: Path, sim: SimCluster, start_gateway: GatewayFactory
) -> None:
    gateway = await start_gateway(parakeet_url=sim.parakeet.url)
    for voice_name in ("ALLISON", "JUNE"):
        (tmp_path / f"{voice_name}.flac").write_bytes(enrolment_files(voice_name)[0].read_bytes())
    hass.config.media_dirs = {"local": str(tmp_path)}
    async_setup_transcribe_services(hass)
    entry = entry_for(hass, gateway.url)
    alice = await enroll(hass, entry, "alice", "ALLISON.flac")
    june = await enroll(hass, entry, "June", "JUNE.flac")

    renamed = await speaker_action(hass, ACTION_RENAME_SPEAKER, entry,
                                   speaker_id=alice["id"].upper(), name="Alice Smith")  # fmt: skip
    assert {**renamed, "updated": None} == {**alice, "name": "Alice Smith", "updated": None}
    assert await list_speakers(hass, entry) == {"speakers": [renamed, june]}
    with pytest.raises(ServiceValidationError) as info:
        await speaker_action(hass, ACTION_RENAME_SPEAKER, entry,
                             speaker_id=june["id"], name="alice smith")  # fmt: skip
    assert info.value.translation_key == "speaker_name_taken"
    assert info.value.translation_placeholders == {"name": "alice smith"}
    await speaker_action(hass, ACTION_FORGET_SPEAKER, entry, speaker_id=june["id"])
    with pytest.raises(ServiceValidationError) as info:
        await speaker_action(hass, ACTION_RENAME_SPEAKER, entry,
                             speaker_id=june["id"], name="June")  # fmt: skip
    assert info.value.translation_key == "unknown_speaker"


async def test_enroll_a_file_that_is_not_audio_is_the_users_error(
    hass: HomeAssistant, tmp_path: Path, sim: SimCluster, start_gateway: GatewayFactory
) -> None:
    """Found by the reviewer: a text file or an empty one among the recordings came back as
    the gateway's failure; it is the user's input, the recording named with the reason."""
    gateway = await start_gateway(parakeet_url=sim.parakeet.url)
    (tmp_path / "alice.flac").write_bytes(enrolment_files("ALLISON")[0].read_bytes())
    (tmp_path / "notes.wav").write_bytes(b"hello world\n" * 100)
    (tmp_path / "empty.wav").write_bytes(b"")
    hass.config.media_dirs = {"local": str(tmp_path)}
    async_setup_transcribe_services(hass)
    entry = entry_for(hass, gateway.url)
    for files, named, reason in (
        (["notes.wav"], "notes.wav", "the audio could not be decoded"),
        (["local/empty.wav"], "local/empty.wav", "the audio file is empty"),
        (["alice.flac", "local/notes.wav"], "local/notes.wav", "the audio could not be decoded"),
        (["alice.flac", "empty.wav"], "empty.wav", "the audio file is empty"),
    ):
        with pytest.raises(ServiceValidationError) as info:
            await enroll(hass, entry, "Alice", *files)
        assert info.value.translation_key == "media_file_not_audio", files
        placeholders = info.value.translation_placeholders or {}
        assert placeholders["file"] == named
        assert placeholders["reason"].startswith(reason), placeholders
    assert await list_speakers(hass, entry) == {"speakers": []}


async def test_names_with_emoji_and_the_refused_characters(
    hass: HomeAssistant, tmp_path: Path, sim: SimCluster, start_gateway: GatewayFactory
) -> None:
    """An emoji written with a ZERO WIDTH JOINER (and a variation selector) enrols and renames;
    a text-direction override or a control character is the translated name error."""
    gateway = await start_gateway(parakeet_url=sim.parakeet.url)
    (tmp_path / "alice.flac").write_bytes(enrolment_files("ALLISON")[0].read_bytes())
    hass.config.media_dirs = {"local": str(tmp_path)}
    async_setup_transcribe_services(hass)
    entry = entry_for(hass, gateway.url)
    zoe = "Zo\u00eb \U0001f469\u200d\U0001f4bb"
    enrolled = await enroll(hass, entry, zoe, "alice.flac")
    assert enrolled["name"] == zoe
    fire = "Zo\u00eb \u2764\ufe0f\u200d\U0001f525"
    renamed = await speaker_action(hass, ACTION_RENAME_SPEAKER, entry,
                                   speaker_id=enrolled["id"], name=fire)  # fmt: skip
    assert renamed["name"] == fire
    assert await list_speakers(hass, entry) == {"speakers": [renamed]}
    for action, data in (
        (ACTION_ENROLL_SPEAKER, {"name": "\u202eecilA", "files": ["alice.flac"]}),
        (ACTION_ENROLL_SPEAKER, {"name": "\u200d\ufe0f", "files": ["alice.flac"]}),
        (ACTION_RENAME_SPEAKER, {"speaker_id": enrolled["id"], "name": "Zo\u00eb\u2066"}),
        (ACTION_RENAME_SPEAKER, {"speaker_id": enrolled["id"], "name": "Zo\u00eb\x07"}),
    ):
        with pytest.raises(ServiceValidationError) as info:
            await speaker_action(hass, action, entry, **data)
        assert info.value.translation_key == "speaker_name_invalid", data
    assert await list_speakers(hass, entry) == {"speakers": [renamed]}


@pytest.mark.parametrize(
    ("action", "data", "key"),
    [
        (ACTION_ENROLL_SPEAKER, {"name": "  ", "files": ["a.wav"]}, "speaker_name_invalid"),
        (ACTION_ENROLL_SPEAKER, {"name": "x" * 65, "files": ["a.wav"]}, "speaker_name_invalid"),
        (ACTION_ENROLL_SPEAKER, {"name": "Alice", "files": []}, "speaker_files_count"),
        (ACTION_ENROLL_SPEAKER, {"name": "Alice", "files": ["a.wav"] * 11}, "speaker_files_count"),
        (ACTION_FORGET_SPEAKER, {"speaker_id": "nope"}, "unknown_speaker"),
        (ACTION_FORGET_SPEAKER, {"speaker_id": "../../api_key"}, "unknown_speaker"),
        (ACTION_RENAME_SPEAKER, {"speaker_id": "nope", "name": "Al"}, "unknown_speaker"),
        (ACTION_RENAME_SPEAKER, {"speaker_id": "0" * 16, "name": " "}, "speaker_name_invalid"),
    ],
)
async def test_bad_speaker_input_is_a_translated_error(
    hass: HomeAssistant, action: str, data: dict[str, object], key: str
) -> None:
    """Refused before anything reaches the gateway (it listens nowhere here), translated."""
    async_setup_transcribe_services(hass)
    entry = entry_for(hass, "http://127.0.0.1:9")
    with pytest.raises(ServiceValidationError) as info:
        await hass.services.async_call(
            DOMAIN, action, {"cluster": entry.entry_id, **data}, blocking=True, return_response=True
        )
    assert info.value.translation_key == key


async def test_list_speakers_errors_are_translated(
    hass: HomeAssistant, start_gateway: GatewayFactory
) -> None:
    """As for enrol and forget: no linked add-on, a wrong key, an add-on that is not there."""
    gateway = await start_gateway(parakeet_url=None)
    async_setup_transcribe_services(hass)
    cases: list[tuple[MockConfigEntry, type[Exception], str]] = [
        (entry_for(hass, None), ServiceValidationError, "gateway_not_linked"),
        (entry_for(hass, gateway.url, key="sk-wrong"), HomeAssistantError, "gateway_error"),
        (entry_for(hass, "http://127.0.0.1:9"), HomeAssistantError, "gateway_unreachable"),
    ]
    for entry, kind, key in cases:
        with pytest.raises(kind) as info:
            await list_speakers(hass, entry)
        assert info.value.translation_key == key
    # Without the add-on's speech models configured the library is still there to list.
    assert await list_speakers(hass, entry_for(hass, gateway.url)) == {"speakers": []}


async def test_enroll_refusals_of_the_recordings_name_them(
    hass: HomeAssistant, tmp_path: Path, sim: SimCluster, start_gateway: GatewayFactory
) -> None:
    """A recording over the gateway's cap on one clip, or without enough speech for a print,
    is the user's translated error naming that recording (and the cap, as the gateway says
    it), not "the add-on gateway answered 400"; nothing is stored."""
    gateway = await start_gateway(parakeet_url=sim.parakeet.url)
    (tmp_path / "alice.flac").write_bytes(enrolment_files("ALLISON")[0].read_bytes())
    (tmp_path / "silence.wav").write_bytes(wav_bytes(np.zeros(3 * 16000, np.int16)))
    # Just past the gateway's cap (`speaker_library.MAX_CLIP_S`, 300 s), in an 8 kHz file.
    (tmp_path / "lecture.wav").write_bytes(wav_bytes(np.zeros(301 * 8000, np.int16), 8000))
    hass.config.media_dirs = {"local": str(tmp_path)}
    async_setup_transcribe_services(hass)
    entry = entry_for(hass, gateway.url)
    for files, key, placeholders in (
        (["local/silence.wav"], "speaker_recording_too_little_speech",
         {"file": "local/silence.wav"}),
        (["alice.flac", "silence.wav"], "speaker_recording_too_little_speech",
         {"file": "silence.wav"}),
        (["lecture.wav"], "speaker_recording_too_long",
         {"file": "lecture.wav", "max_seconds": "300"}),
        (["alice.flac", "local/lecture.wav"], "speaker_recording_too_long",
         {"file": "local/lecture.wav", "max_seconds": "300"}),
    ):  # fmt: skip
        with pytest.raises(ServiceValidationError) as info:
            await enroll(hass, entry, "Alice", *files)
        assert info.value.translation_key == key, files
        assert info.value.translation_placeholders == placeholders
    assert await list_speakers(hass, entry) == {"speakers": []}
    # (The cap is read from the gateway's words, as the contract gives them.)
    refusals = json.loads((CONTRACTS / "speakers.json").read_text())["enrol_clip_refusals"]
    limit = CLIP_LIMIT.search(refusals["clip_too_long"]["example"])
    assert limit is not None
    assert limit.group(1) == "300"


async def test_uploads_over_the_add_ons_cap_are_the_users_error(
    hass: HomeAssistant, tmp_path: Path, sim: SimCluster, start_gateway: GatewayFactory
) -> None:
    """Recordings together larger than the add-on's `max_upload_mb`: the gateway's 413 is a
    translated error naming them and the cap, for enrolment and for transcripts."""
    clip = enrolment_files("ALLISON")[0].read_bytes()
    gateway = await start_gateway(parakeet_url=sim.parakeet.url, max_upload_bytes=len(clip) + 4096)
    (tmp_path / "a.flac").write_bytes(clip)
    (tmp_path / "b.flac").write_bytes(enrolment_files("ALLISON")[1].read_bytes())
    (tmp_path / "meeting.wav").write_bytes(wav_bytes(np.zeros(10 * 16000, np.int16)))
    hass.config.media_dirs = {"local": str(tmp_path)}
    async_setup_transcribe_services(hass)
    entry = entry_for(hass, gateway.url)
    with pytest.raises(ServiceValidationError) as info:
        await enroll(hass, entry, "Alice", "a.flac", "local/b.flac")
    assert info.value.translation_key == "media_files_too_large"
    placeholders = info.value.translation_placeholders or {}
    assert placeholders["files"] == "a.flac, local/b.flac"
    assert str(gateway.config.max_upload_bytes) in placeholders["reason"]
    with pytest.raises(ServiceValidationError) as info:
        await call(hass, entry, "local/meeting.wav")
    assert info.value.translation_key == "media_files_too_large"
    assert (info.value.translation_placeholders or {})["files"] == "meeting.wav"
    assert await list_speakers(hass, entry) == {"speakers": []}
    assert sim.parakeet.transcriptions == 0
    # One recording within the cap still enrols.
    assert (await enroll(hass, entry, "Alice", "a.flac"))["clips"] == 1


async def test_a_full_library_is_the_users_error(
    hass: HomeAssistant, tmp_path: Path, sim: SimCluster, start_gateway: GatewayFactory
) -> None:
    """With `MAX_VOICEPRINTS` people enrolled, a new person is refused in translated words
    (someone must be forgotten first); someone enrolled can still add recordings."""
    gateway = await start_gateway(parakeet_url=sim.parakeet.url)
    library = gateway.config.data_dir / "voiceprints"
    library.mkdir(parents=True, mode=0o700)
    vectors = np.random.default_rng(7).normal(size=(MAX_VOICEPRINTS, 192))
    for n, vector in enumerate(vectors):  # voices far from anyone's: unit random directions
        person = {"id": f"{n:016x}", "name": f"Person {n}", "clips": 1, "speech_s": 20.0,
                  "created": "2026-12-01T00:00:00+00:00", "updated": "2026-12-01T00:00:00+00:00",
                  "vector": (vector / np.linalg.norm(vector)).tolist()}  # fmt: skip
        (library / f"{person['id']}.json").write_text(json.dumps(person))
    (tmp_path / "alice.flac").write_bytes(enrolment_files("ALLISON")[0].read_bytes())
    hass.config.media_dirs = {"local": str(tmp_path)}
    async_setup_transcribe_services(hass)
    entry = entry_for(hass, gateway.url)
    with pytest.raises(ServiceValidationError) as info:
        await enroll(hass, entry, "Alice", "alice.flac")
    assert info.value.translation_key == "speaker_library_full"
    assert info.value.translation_placeholders == {"name": "Alice"}
    assert len(list(library.iterdir())) == MAX_VOICEPRINTS
    await speaker_action(hass, ACTION_FORGET_SPEAKER, entry, speaker_id=f"{0:016x}")
    assert (await enroll(hass, entry, "Alice", "alice.flac"))["name"] == "Alice"


async def test_unicode_spaces_in_names_are_plain_spaces(
    hass: HomeAssistant, tmp_path: Path, sim: SimCluster, start_gateway: GatewayFactory
) -> None:
    """A name pasted with a no-break space (or typed with an ideographic or narrow no-break
    space) is the name with plain spaces, runs of them one: the same person as typed plainly.
    A control character is still refused."""
    gateway = await start_gateway(parakeet_url=sim.parakeet.url)
    (tmp_path / "alice.flac").write_bytes(enrolment_files("ALLISON")[0].read_bytes())
    (tmp_path / "alice-2.flac").write_bytes(enrolment_files("ALLISON")[1].read_bytes())
    hass.config.media_dirs = {"local": str(tmp_path)}
    async_setup_transcribe_services(hass)
    entry = entry_for(hass, gateway.url)
    enrolled = await enroll(hass, entry, "\u00a0Alice\u00a0\u3000 Smith\u2003", "alice.flac")
    assert enrolled["name"] == "Alice Smith"
    # The same person, by the name typed plainly: her recordings are added to her print.
    more = await enroll(hass, entry, "alice smith", "alice-2.flac")
    assert (more["id"], more["clips"]) == (enrolled["id"], 2)
    renamed = await speaker_action(hass, ACTION_RENAME_SPEAKER, entry, speaker_id=enrolled["id"],
                                   name="Zo\u00eb\u202fM\u00e9ril")  # fmt: skip
    assert renamed["name"] == "Zo\u00eb M\u00e9ril"
    assert [p["name"] for p in (await list_speakers(hass, entry))["speakers"]] == [
        "Zo\u00eb M\u00e9ril"
    ]
    for name in ("Zo\u00eb\u00a0\tM", "Zo\u00eb\u2028M", "\u00a0\u3000"):
        with pytest.raises(ServiceValidationError) as info:
            await speaker_action(hass, ACTION_RENAME_SPEAKER, entry,
                                 speaker_id=enrolled["id"], name=name)  # fmt: skip
        assert info.value.translation_key == "speaker_name_invalid", name
