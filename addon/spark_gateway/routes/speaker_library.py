"""Enrolled speakers: enrol a person by name from clips, list, forget, and identify a voice.

- `POST /api/speakers` (multipart `name`, one or more `file` clips, optional `replace`): a
  voiceprint from the clips (each fingerprinted by the Parakeet container's diarize-chunk),
  added to the library or merged into the person already enrolled under that name. 201 with
  the summary. Clips that do not sound like one voice are a 400 `voice_mismatch` naming the
  odd clip (`param` `file[i]`, 0-based); clips that do not sound like the person already
  enrolled are a 409 `voice_mismatch`, unless `replace=true` starts that print again; a new
  print that sounds like someone enrolled under another name is a 409 `voice_already_enrolled`;
  a new person when `MAX_VOICEPRINTS` are enrolled is a 409 `library_full`. A clip over
  `MAX_CLIP_S` is a 400 `clip_too_long`, one without enough clear speech for a print a 400
  `too_little_speech`, both naming the clip by `param`.
- `GET /api/speakers`: everyone enrolled (names, clip counts, seconds; never the prints).
- `PATCH /api/speakers/{id}` (JSON `{"name"}`): rename a person (a name someone else has is a
  409 `name_taken`).
- `DELETE /api/speakers/{id}`: forget a person; the voiceprint file is deleted.
- `POST /api/speakers/identify` (multipart `file`): who is speaking in a short clip (the
  Wyoming bridge's "who spoke"), `{"speaker": {"id", "name"} | null, "confidence"}`.

Voiceprints are personal data: nothing here logs a name or a vector.
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web

from ..appkeys import CONFIG, UPSTREAM, VOICEPRINTS
from ..errors import ApiError
from ..openapi import BINARY_FILE, ERROR, UPSTREAM_FAILURES, add_route, errors
from ..request_body import read_json_object
from ..speakers.parsing import UpstreamFormatError
from ..speakers.pipeline import clip_fingerprint
from ..speakers.voiceprints import (
    LibraryFull,
    NameTaken,
    VoiceAlreadyEnrolled,
    VoiceMismatch,
    VoiceprintError,
    check_name,
    match_names,
)
from ..uploads import MULTIPART, AudioUpload, read_audio_upload
from .speakers import bad_upstream, decode_audio

MAX_CLIPS = 10
MAX_CLIP_S = 300.0
NOT_AUDIO = frozenset({"empty_audio", "invalid_audio"})  # a clip that is not audio at all


async def _fingerprint(
    request: web.Request, upload: Path | bytes, what: str, param: str = "file"
) -> tuple[np.ndarray, float]:
    """One clip's print; an error names the clip by `param` (`file[i]` among several)."""
    try:
        decoded = await decode_audio(request, upload)
    except ApiError as err:
        if err.code not in NOT_AUDIO:
            raise
        raise ApiError(err.status, err.message, code=err.code, param=param) from err
    if decoded.duration_s > MAX_CLIP_S:
        raise ApiError(400, f"{what} is longer than {MAX_CLIP_S:g} s", code="clip_too_long",
                       param=param)  # fmt: skip
    try:
        found = await clip_fingerprint(request.app[UPSTREAM], decoded.samples())
    except UpstreamFormatError as err:
        raise bad_upstream(err) from err
    if found is None:
        raise ApiError(400, f"{what} holds too little clear speech for a voiceprint",
                       code="too_little_speech", param=param)  # fmt: skip
    return found


def _clips(upload: AudioUpload) -> list[Path | bytes]:
    """Every `file` part, each read (or spooled to disk) as it arrived."""
    if len(upload.files) > MAX_CLIPS:
        raise ApiError(400, f"send at most {MAX_CLIPS} clips", code="too_many_clips",
                       param="file")  # fmt: skip
    for n, clip in enumerate(upload.files):  # (the upload checked the first one)
        if (len(clip) if isinstance(clip, bytes) else clip.stat().st_size) == 0:
            raise ApiError(400, "the audio file is empty", code="empty_audio",
                           param=f"file[{n}]")  # fmt: skip
    return upload.files


async def enrol_route(request: web.Request) -> web.Response:
    """POST /api/speakers."""
    upload = await read_audio_upload(request)
    try:
        name = check_name(upload.text("name"))
    except VoiceprintError as err:
        raise ApiError(400, str(err), code="invalid_name", param="name") from err
    replace_print = upload.flag("replace")
    paths = _clips(upload)
    prints = [
        await _fingerprint(request, path, f"clip {n + 1}", f"file[{n}]")
        for n, path in enumerate(paths)
    ]
    enrol = functools.partial(
        request.app[VOICEPRINTS].enrol, name, prints,
        threshold=request.app[CONFIG].speaker_name_threshold, replace_print=replace_print,
    )  # fmt: skip
    try:
        voiceprint = await asyncio.to_thread(enrol)
    except VoiceAlreadyEnrolled as err:
        raise ApiError(409, str(err), code="voice_already_enrolled", param="file") from err
    except VoiceMismatch as err:
        if err.clip is None:  # the request is fine; it disagrees with what is stored
            raise ApiError(409, str(err), code="voice_mismatch") from err
        raise ApiError(400, str(err), code="voice_mismatch", param=f"file[{err.clip}]") from err
    except LibraryFull as err:
        raise ApiError(409, str(err), code="library_full") from err
    except VoiceprintError as err:
        raise ApiError(400, str(err), code="enrolment_refused") from err
    return web.json_response(voiceprint.summary(), status=201)


async def list_route(request: web.Request) -> web.Response:
    """GET /api/speakers."""
    prints = await asyncio.to_thread(request.app[VOICEPRINTS].list)
    return web.json_response({"speakers": [p.summary() for p in prints]})


async def rename_route(request: web.Request) -> web.Response:
    """PATCH /api/speakers/{id}."""
    _, payload = await read_json_object(request)
    raw = payload.get("name")
    try:
        name = check_name(raw if isinstance(raw, str) else None)
    except VoiceprintError as err:
        raise ApiError(400, str(err), code="invalid_name", param="name") from err
    library = request.app[VOICEPRINTS]
    try:
        renamed = await asyncio.to_thread(library.rename, request.match_info["id"], name)
    except NameTaken as err:
        raise ApiError(409, str(err), code="name_taken", param="name") from err
    except VoiceprintError as err:
        raise _unknown_speaker() from err
    return web.json_response(renamed.summary())


def _unknown_speaker() -> ApiError:
    return ApiError(404, "no enrolled speaker has this id", code="unknown_speaker")


async def forget_route(request: web.Request) -> web.Response:
    """DELETE /api/speakers/{id}."""
    try:
        gone = await asyncio.to_thread(request.app[VOICEPRINTS].forget, request.match_info["id"])
    except VoiceprintError as err:
        raise _unknown_speaker() from err
    return web.json_response({"deleted": gone.summary()})


async def identify_route(request: web.Request) -> web.Response:
    """POST /api/speakers/identify."""
    upload = await read_audio_upload(request)
    prints = await asyncio.to_thread(request.app[VOICEPRINTS].list)
    if not prints:  # nobody to recognise: spare the GPU (every voice command asks)
        await decode_audio(request, upload.audio)
        return web.json_response({"speaker": None, "confidence": None})
    vector, _seconds = await _fingerprint(request, upload.audio, "the clip")
    threshold = request.app[CONFIG].speaker_name_threshold
    match = match_names({"voice": vector}, prints, threshold=threshold).get("voice")
    body: dict[str, Any] = {
        "speaker": {"id": match.voiceprint.id, "name": match.voiceprint.name} if match else None,
        "confidence": match.confidence if match else None,
    }
    return web.json_response(body)


_SUMMARY = {
    "type": "object",
    "required": ["id", "name", "clips", "speech_s", "created", "updated"],
}


def setup(app: web.Application) -> None:
    """Register the library routes and their OpenAPI description."""
    failures = errors(400, 401, 413, 415, *UPSTREAM_FAILURES)
    add_route(app, "POST", "/api/speakers", enrol_route, {
        "summary": "Enrol a person by name from one or more voice clips",
        "requestBody": {"required": True, "content": {MULTIPART: {"schema": {
            "type": "object", "required": ["name", "file"],
            "properties": {"name": {"type": "string", "maxLength": 64},
                           "file": {"type": "array", "items": BINARY_FILE, "maxItems": MAX_CLIPS},
                           "replace": {"type": "boolean", "default": False, "description":
                               "start the named person's voiceprint again from these clips"}},
        }}}},
        "responses": {"201": {"description": "Enrolled", "content": {
            "application/json": {"schema": _SUMMARY}}}, **failures, **errors(409)},
    })  # fmt: skip
    add_route(app, "GET", "/api/speakers", list_route, {
        "summary": "The enrolled speakers (never their voiceprints)",
        "responses": {"200": {"description": "Enrolled speakers", "content": {
            "application/json": {"schema": {"type": "object", "properties": {
                "speakers": {"type": "array", "items": _SUMMARY}}}}}},
            "401": ERROR},
    })  # fmt: skip
    add_route(app, "PATCH", "/api/speakers/{id}", rename_route, {
        "summary": "Rename an enrolled speaker (the voiceprint stays as it is)",
        "parameters": [{"name": "id", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["name"],
            "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 64}}}}}},
        "responses": {"200": {"description": "Renamed", "content": {
            "application/json": {"schema": _SUMMARY}}}, **errors(400, 401, 404, 409, 413)},
    })  # fmt: skip
    add_route(app, "DELETE", "/api/speakers/{id}", forget_route, {
        "summary": "Forget an enrolled speaker (the voiceprint is deleted)",
        "parameters": [{"name": "id", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {"200": {"description": "Deleted"}, "401": ERROR, "404": ERROR},
    })  # fmt: skip
    add_route(app, "POST", "/api/speakers/identify", identify_route, {
        "summary": "Which enrolled person speaks in a short clip, if any",
        "requestBody": {"required": True, "content": {MULTIPART: {"schema": {
            "type": "object", "required": ["file"], "properties": {"file": BINARY_FILE}}}}},
        "responses": {"200": {"description": "The match or null", "content": {
            "application/json": {"schema": {"type": "object",
                                            "required": ["speaker", "confidence"]}}}},
            **failures},
    })  # fmt: skip
