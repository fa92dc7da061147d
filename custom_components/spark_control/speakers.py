"""Enrolled speakers in Home Assistant: enrol a person from media files, list, rename and forget
them, and "who spoke" events for voice commands.

The voiceprints live in the add-on gateway (its data folder), never in Home Assistant: the
actions send the recordings there, and the Wyoming STT bridge asks it who spoke each
command. Nothing here stores or logs a voiceprint.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from typing import Any

import aiohttp
import voluptuous as vol
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv

from .actions import ATTR_CLUSTER
from .const import DOMAIN, EVENT_SPEAKER_IDENTIFIED, LOGGER
from .transcribe import (
    NOT_AUDIO_CODES,
    GatewayError,
    gateway_request,
    invalid_input,
    linked_gateway,
    open_media_file,
    resolve_media_file,
)

ACTION_ENROLL_SPEAKER = "enroll_speaker"
ACTION_FORGET_SPEAKER = "forget_speaker"
ACTION_LIST_SPEAKERS = "list_speakers"
ACTION_RENAME_SPEAKER = "rename_speaker"
ATTR_NAME = "name"
ATTR_FILES = "files"
ATTR_SPEAKER_ID = "speaker_id"
ATTR_REPLACE = "replace"
MAX_CLIPS = 10  # the gateway's limits
MAX_NAME_CHARS = 64
SPEAKER_ID = re.compile(r"[a-f0-9]{16}")
IDENTIFY_TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=5)

# Only types here: the handlers check the values, so a bad one is a translated error.
ENROLL_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_CLUSTER): cv.string,
        vol.Required(ATTR_NAME): cv.string,
        vol.Required(ATTR_FILES): vol.All(cv.ensure_list, [cv.string]),
        vol.Optional(ATTR_REPLACE, default=False): cv.boolean,
    }
)
ODD_CLIP = re.compile(r"file\[(\d+)\]")  # the gateway's `param` for the clip it refuses
# The gateway's words for its cap on one recording: "clip 2 is longer than 300 s".
CLIP_LIMIT = re.compile(r"longer than (\d+(?:\.\d+)?) s\b")
SPACE_RUN = re.compile(" {2,}")
FORGET_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_CLUSTER): cv.string,
        # The gateway hands out lower-case hex ids: one pasted in upper case (or with the
        # spaces of a copy) is the same id.
        vol.Required(ATTR_SPEAKER_ID): vol.All(cv.string, vol.Strip, vol.Lower),
    }
)
LIST_SCHEMA = vol.Schema({vol.Required(ATTR_CLUSTER): cv.string})
RENAME_SCHEMA = FORGET_SCHEMA.extend({vol.Required(ATTR_NAME): cv.string})


def _checked_name(call: ServiceCall) -> str:
    """The name as the gateway keeps it: each Unicode space (a no-break space pasted from a
    document) a plain one, a run of them one, none around it."""
    plain = "".join(" " if unicodedata.category(char) == "Zs" else char
                    for char in call.data[ATTR_NAME])  # fmt: skip
    name = SPACE_RUN.sub(" ", plain).strip()
    if not 1 <= len(name) <= MAX_NAME_CHARS:
        raise invalid_input("speaker_name_invalid", max=str(MAX_NAME_CHARS))
    return name


def _checked_speaker_id(call: ServiceCall) -> str:
    speaker_id: str = call.data[ATTR_SPEAKER_ID]
    if not SPEAKER_ID.fullmatch(speaker_id):  # no id the gateway hands out
        raise invalid_input("unknown_speaker", speaker_id=speaker_id[:64])
    return speaker_id


async def _enroll(call: ServiceCall) -> ServiceResponse:
    hass = call.hass
    name = _checked_name(call)
    if not 1 <= len(call.data[ATTR_FILES]) <= MAX_CLIPS:
        raise invalid_input("speaker_files_count", max=str(MAX_CLIPS))
    gateway_url, api_key = linked_gateway(call)
    paths = [resolve_media_file(hass.config.media_dirs, f) for f in call.data[ATTR_FILES]]
    handles = []
    try:
        for path, reference in zip(paths, call.data[ATTR_FILES], strict=True):
            handles.append(await hass.async_add_executor_job(open_media_file, path, reference))
        form = aiohttp.FormData()
        form.add_field(ATTR_NAME, name)
        form.add_field(ATTR_REPLACE, "true" if call.data[ATTR_REPLACE] else "false")
        for path, handle in zip(paths, handles, strict=True):
            form.add_field("file", handle, filename=path.name,
                           content_type="application/octet-stream")  # fmt: skip
        return await gateway_request(hass, "POST", gateway_url.rstrip("/") + "/api/speakers",
                                   api_key, data=form)  # fmt: skip
    except GatewayError as err:
        refusal = _refused_enrolment(err, name, call.data[ATTR_FILES])
        if refusal is None:
            raise
        raise refusal from err
    finally:
        for handle in handles:
            await hass.async_add_executor_job(handle.close)


def _refused_enrolment(
    err: GatewayError, name: str, files: list[str]
) -> ServiceValidationError | None:
    """The user's own error for each way the gateway refuses what they sent; None for a
    fault of the gateway or its models (left as the gateway's error)."""
    if err.code == "voice_mismatch":
        return _voice_mismatch(err, name, files)
    if err.code in NOT_AUDIO_CODES:  # the user's recording, not a fault of the gateway
        return invalid_input("media_file_not_audio", file=_clip_named(err, files),
                             reason=err.message)  # fmt: skip
    if err.code == "clip_too_long" and (limit := CLIP_LIMIT.search(err.message)):
        return invalid_input("speaker_recording_too_long", file=_clip_named(err, files),
                             max_seconds=limit.group(1))  # fmt: skip
    if err.code == "too_little_speech":
        return invalid_input("speaker_recording_too_little_speech", file=_clip_named(err, files))
    if err.code == "request_too_large":  # over the add-on's max_upload_mb, all together
        return invalid_input("media_files_too_large", files=", ".join(files), reason=err.message)
    if err.code == "invalid_name":  # a character the gateway's name rule refuses
        return invalid_input("speaker_name_invalid", max=str(MAX_NAME_CHARS))
    if err.code == "voice_already_enrolled":  # the gateway's words name that person
        return invalid_input("speaker_voice_already_enrolled", name=name, reason=err.message)
    if err.code == "library_full":
        return invalid_input("speaker_library_full", name=name)
    return None


def _clip_named(err: GatewayError, files: list[str]) -> str:
    """The recording the gateway's `param` (`file[i]`) points at; a bare `file` is the first
    (the gateway checks that one for emptiness as the upload arrives)."""
    clip = ODD_CLIP.fullmatch(err.param or "")
    index = int(clip.group(1)) if clip is not None else 0
    return files[index] if index < len(files) else files[0]


def _voice_mismatch(err: GatewayError, name: str, files: list[str]) -> ServiceValidationError:
    """The gateway heard another voice: in one recording of the request (it names which), or
    in all of them compared with the person already enrolled under `name`."""
    odd = ODD_CLIP.fullmatch(err.param or "")
    if odd is not None and int(odd.group(1)) < len(files):
        return invalid_input("speaker_recording_mismatch", file=files[int(odd.group(1))])
    return invalid_input("speaker_voice_mismatch", name=name)


async def _forget(call: ServiceCall) -> ServiceResponse:
    return await _speaker_request(call, "DELETE", _checked_speaker_id(call))


async def _rename(call: ServiceCall) -> ServiceResponse:
    """A new name for an enrolled person; the voiceprint stays as it is."""
    speaker_id, name = _checked_speaker_id(call), _checked_name(call)
    try:
        return await _speaker_request(call, "PATCH", speaker_id, json={ATTR_NAME: name})
    except GatewayError as err:
        if err.code == "name_taken":
            raise invalid_input("speaker_name_taken", name=name) from err
        if err.code == "invalid_name":
            raise invalid_input("speaker_name_invalid", max=str(MAX_NAME_CHARS)) from err
        raise


async def _speaker_request(
    call: ServiceCall, method: str, speaker_id: str, json: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One call on `/api/speakers/{id}`; an id the gateway does not know is a translated
    `unknown_speaker`."""
    gateway_url, api_key = linked_gateway(call)
    url = f"{gateway_url.rstrip('/')}/api/speakers/{speaker_id}"
    try:
        return await gateway_request(call.hass, method, url, api_key, json=json)
    except GatewayError as err:
        if err.status == 404:
            raise invalid_input("unknown_speaker", speaker_id=speaker_id) from err
        raise


async def _list(call: ServiceCall) -> ServiceResponse:
    """Everyone enrolled, as the gateway lists them (ids, names, clips, seconds, times; the
    gateway never sends a voiceprint), so a lost enrolment answer can be found again."""
    gateway_url, api_key = linked_gateway(call)
    return await gateway_request(call.hass, "GET", gateway_url.rstrip("/") + "/api/speakers",
                                 api_key)  # fmt: skip


@callback
def async_setup_speaker_services(hass: HomeAssistant) -> None:
    """Register `enroll_speaker`, `list_speakers`, `rename_speaker` and `forget_speaker`."""
    hass.services.async_register(DOMAIN, ACTION_ENROLL_SPEAKER, _enroll, schema=ENROLL_SCHEMA,
                                 supports_response=SupportsResponse.OPTIONAL)  # fmt: skip
    hass.services.async_register(DOMAIN, ACTION_LIST_SPEAKERS, _list, schema=LIST_SCHEMA,
                                 supports_response=SupportsResponse.ONLY)  # fmt: skip
    hass.services.async_register(DOMAIN, ACTION_RENAME_SPEAKER, _rename, schema=RENAME_SCHEMA,
                                 supports_response=SupportsResponse.OPTIONAL)  # fmt: skip
    hass.services.async_register(DOMAIN, ACTION_FORGET_SPEAKER, _forget, schema=FORGET_SCHEMA,
                                 supports_response=SupportsResponse.OPTIONAL)  # fmt: skip


async def async_who_spoke(
    hass: HomeAssistant, entry_id: str, gateway_url: str, api_key: str, wav: bytes, text: str
) -> None:
    """Ask the gateway who said a voice command; fire an event when it is someone enrolled.

    Best effort: a voice command never waits for this, and a failure only shows in the log.
    """
    form = aiohttp.FormData()
    form.add_field("file", wav, filename="command.wav", content_type="audio/wav")
    body: dict[str, Any] = {}
    with contextlib.suppress(HomeAssistantError):
        url = gateway_url.rstrip("/") + "/api/speakers/identify"
        body = await gateway_request(
            hass, "POST", url, api_key, data=form, client_timeout=IDENTIFY_TIMEOUT
        )
    speaker = body.get("speaker")
    if not isinstance(speaker, dict):
        LOGGER.debug("Who spoke: nobody enrolled recognised" if body else "Who spoke: no answer")
        return
    hass.bus.async_fire(
        EVENT_SPEAKER_IDENTIFIED,
        {
            "entry_id": entry_id,
            "name": speaker.get("name"),
            "speaker_id": speaker.get("id"),
            "confidence": body.get("confidence"),
            "text": text[:500],
        },
    )


__all__ = ["async_setup_speaker_services", "async_who_spoke"]
