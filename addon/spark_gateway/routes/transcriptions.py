"""POST /v1/audio/transcriptions: any browser/app audio → 16 kHz WAV or Ogg/Opus → Parakeet →
OpenAI shapes."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from aiohttp import web

from ..appkeys import CONFIG, SPOOL, UPSTREAM
from ..decoder import DecodedFile
from ..diarized_transcript import KnownSpeaker, diarized_body, name_speakers, parse_known_speakers
from ..errors import ApiError, UpstreamError
from ..form_fields import check_field_size
from ..language_tag import LANGUAGE_TAG
from ..openapi import BINARY_FILE, GUARDED, UPSTREAM_FAILURES, add_route, errors, multipart_body
from ..request_body import media_type, parse_json
from ..speakers.parsing import UpstreamFormatError
from ..speakers.pipeline import transcribe_with_speakers
from ..transcript_formats import subtitle_cues, to_srt, to_vtt, usage, verbose_transcription
from ..transcription_stream import stream_transcription
from ..uploads import (
    MULTIPART,
    URLENCODED,
    decode_upload,
    parakeet_upload,
    read_audio_upload,
    spool_bytes,
)
from .speakers import speaker_options

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json", "diarized_json")
STREAMED_FORMATS = ("json", "text")  # as OpenAI: verbose and subtitle formats are not streamed
CHUNKING_TYPES = ("server_vad",)
GRANULARITIES = ("word", "segment")
MAX_JSON_AUDIO_BODY = 25 * 1024 * 1024 * 4 // 3 + 64 * 1024  # 25 MiB of audio in base64


@dataclass(slots=True)
class TranscriptionRequest:
    """The fields of an OpenAI transcription request, validated."""

    audio: Path | bytes  # the upload, spooled unless short
    model: str | None = None
    language: str | None = None
    response_format: str = "json"
    granularities: list[str] = field(default_factory=list)
    stream: bool = False
    known_speakers: list[KnownSpeaker] = field(default_factory=list)


async def read_transcription_request(request: web.Request) -> TranscriptionRequest:
    """Parse multipart (the OpenAI API) or Open WebUI's JSON `input_audio` form."""
    if media_type(request) == "application/json":
        return await _read_json(request)
    upload = await read_audio_upload(request, content_types=(MULTIPART, URLENCODED))
    granularities = [
        *upload.texts("timestamp_granularities[]"),
        *upload.texts("timestamp_granularities"),
    ]
    req = _validated(
        upload.audio,
        model=upload.text("model"),
        language=upload.text("language"),
        response_format=upload.text("response_format"),
        granularities=granularities,
        temperature=upload.text("temperature"),
    )
    req.stream = upload.flag("stream")
    req.known_speakers = parse_known_speakers(
        [*upload.texts("known_speaker_names[]"), *upload.texts("known_speaker_names")],
        [*upload.texts("known_speaker_references[]"), *upload.texts("known_speaker_references")],
    )
    _check_chunking(upload.text("chunking_strategy"), upload.text("chunking_strategy[type]"))
    return _checked_combination(req)


def _check_chunking(raw: str | None, flattened_type: str | None) -> None:
    """Accept `auto` or a server_vad object (as JSON text or the SDK's flattened fields).

    The gateway always cuts long audio at its quietest points itself, so the choice does
    not change the result; a malformed value is still the client's error.
    """
    kind = flattened_type
    if raw is not None and raw != "auto":
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        kind = parsed.get("type") if isinstance(parsed, dict) else "?"
    if kind is not None and kind not in CHUNKING_TYPES:
        raise ApiError(400, "chunking_strategy must be 'auto' or {\"type\": \"server_vad\", ...}",
                       code="invalid_chunking_strategy", param="chunking_strategy")  # fmt: skip


def _checked_combination(req: TranscriptionRequest) -> TranscriptionRequest:
    if req.stream and req.response_format not in STREAMED_FORMATS:
        raise ApiError(400, "stream=true works with response_format json or text",
                       code="unsupported_response_format", param="stream")  # fmt: skip
    if req.known_speakers and req.response_format != "diarized_json":
        raise ApiError(400, "known speakers need response_format=diarized_json",
                       code="invalid_known_speakers", param="known_speaker_names")  # fmt: skip
    return req


async def _read_json(request: web.Request) -> TranscriptionRequest:
    config = request.app[CONFIG]
    # The JSON form is parsed in memory (body, then the decoded base64), so it gets a cap of
    # its own: OpenAI's 25 MB file limit in base64. Bigger recordings go as multipart.
    limit = min(config.max_upload_bytes, MAX_JSON_AUDIO_BODY)
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, f"JSON audio body over {limit} bytes; send multipart instead",
                       code="request_too_large")  # fmt: skip
    body = bytearray()
    async for piece in request.content.iter_chunked(64 * 1024):  # chunked: no Content-Length
        body += piece
        if len(body) > limit:
            raise ApiError(413, f"JSON audio body over {limit} bytes; send multipart instead",
                           code="request_too_large")  # fmt: skip
    payload = parse_json(body)  # parsed in place: a copy would double the peak
    del body
    for name in ("model", "language", "prompt", "response_format", "temperature"):
        value = payload.get(name)
        if isinstance(value, str):  # the same caps as the multipart form's fields
            check_field_size(name, len(value.encode()))
    try:
        encoded = payload["input_audio"]["data"]
        audio = base64.b64decode(encoded, validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as err:
        raise ApiError(
            400,
            "JSON requests need input_audio.data (base64 audio)",
            code="invalid_request",
            param="input_audio",
        ) from err
    if not audio:
        raise ApiError(400, "the audio file is empty", code="empty_audio", param="file")
    path = request.app[SPOOL].new_file(request, ".upload")
    await spool_bytes(path, audio)
    del audio
    granularities = payload.get("timestamp_granularities") or []
    req = _validated(
        path,
        model=_text(payload.get("model")),
        language=_text(payload.get("language")),
        response_format=_text(payload.get("response_format")),
        granularities=[str(g) for g in granularities] if isinstance(granularities, list) else [],
        temperature=_text(payload.get("temperature")),
    )
    req.stream = payload.get("stream") is True
    return _checked_combination(req)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, web.FileField):
        return None
    text = str(value).strip()
    return text or None


def _validated(
    audio: Path | bytes,
    *,
    model: str | None,
    language: str | None,
    response_format: str | None,
    granularities: list[str],
    temperature: str | None,
) -> TranscriptionRequest:
    fmt = response_format or "json"
    if fmt not in RESPONSE_FORMATS:
        raise ApiError(
            400,
            f"response_format must be one of {', '.join(RESPONSE_FORMATS)}",
            code="unsupported_response_format",
            param="response_format",
        )
    if language is not None and not LANGUAGE_TAG.match(language):
        raise ApiError(
            400,
            f"language {language!r} is not a language code",
            code="invalid_language",
            param="language",
        )
    for granularity in granularities:
        if granularity not in GRANULARITIES:
            raise ApiError(
                400,
                "timestamp_granularities[] must be 'word' and/or 'segment'",
                code="invalid_granularity",
                param="timestamp_granularities",
            )
    if temperature is not None:
        try:
            value = float(temperature)
        except ValueError:
            value = -1.0
        if not 0.0 <= value <= 1.0:
            raise ApiError(
                400,
                "temperature must be a number between 0 and 1",
                code="invalid_temperature",
                param="temperature",
            )
    return TranscriptionRequest(audio, model, language, fmt, granularities)


async def transcriptions(request: web.Request) -> web.StreamResponse:
    """Transcribe an upload and answer in the requested OpenAI format."""
    req = await read_transcription_request(request)
    upstream = request.app[UPSTREAM]
    if req.stream or req.response_format == "diarized_json":
        # Cut and measured here: these need the decoded samples, never Ogg/Opus.
        decoded = await decode_upload(request, req.audio)
        if req.stream:
            samples = decoded.samples()
            return await stream_transcription(request, upstream, samples, language=req.language)
        return await _diarized(request, req, decoded)
    audio = await parakeet_upload(request, req.audio)
    verbose = req.response_format in ("verbose_json", "srt", "vtt")
    result = await upstream.transcribe(
        audio.audio,
        language=req.language,
        response_format="verbose_json" if verbose else "json",
        granularities=["word", "segment"] if verbose else [],
        model=None,
        audio_format=audio.format,
    )
    if not isinstance(result, dict):
        result = {"text": str(result)}
    text = str(result.get("text", "")).strip()
    if req.response_format == "json":
        return web.json_response({"text": text, "usage": usage(audio.duration_s)})
    if req.response_format == "text":
        return web.Response(text=text, content_type="text/plain")
    if req.response_format in ("srt", "vtt"):
        cues = subtitle_cues(result, duration=audio.duration_s)
        if req.response_format == "srt":
            return web.Response(text=to_srt(cues), content_type="text/plain")
        return web.Response(text=to_vtt(cues), content_type="text/vtt")
    body = verbose_transcription(
        result,
        duration=audio.duration_s,
        language=req.language,
        words_wanted="word" in req.granularities,
    )
    return web.json_response(body)


async def _diarized(
    request: web.Request, req: TranscriptionRequest, decoded: DecodedFile
) -> web.Response:
    """diarized_json through the speaker pipeline; known speakers named from their clips."""
    config = request.app[CONFIG]
    upstream = request.app[UPSTREAM]
    samples = decoded.samples()
    try:
        result = await transcribe_with_speakers(
            upstream,
            samples,
            language=req.language,
            options=speaker_options(config),
            stt_model=config.stt_model,
        )
        references = [
            (known.name, await _reference_samples(request, known)) for known in req.known_speakers
        ]
        names = await name_speakers(
            upstream, samples, result, references, threshold=config.speaker_link_threshold
        )
    except UpstreamFormatError as err:
        raise UpstreamError("parakeet", 502, f"parakeet returned an unusable answer: {err}",
                            code="upstream_bad_response") from err  # fmt: skip
    return web.json_response(diarized_body(result, names))


async def _reference_samples(request: web.Request, known: KnownSpeaker) -> npt.NDArray[np.int16]:
    """A reference clip decoded like any upload (header check, decoder process, caps)."""
    path = request.app[SPOOL].new_file(request, ".reference")
    await spool_bytes(path, known.audio)
    decoded = await decode_upload(request, path)
    return np.asarray(decoded.samples()[:])  # a short clip: read whole


def setup(app: web.Application) -> None:
    """Register the transcription route, each with its OpenAPI operation."""
    add_route(
        app,
        "POST",
        "/v1/audio/transcriptions",
        transcriptions,
        {
            "summary": (
                "Speech to text (Parakeet); any common audio format, recognised from the bytes"
            ),
            "requestBody": multipart_body(
                {
                    "file": BINARY_FILE,
                    "model": {"type": "string"},
                    "language": {"type": "string"},
                    "prompt": {"type": "string"},
                    "response_format": {
                        "type": "string",
                        "enum": ["json", "text", "srt", "vtt", "verbose_json", "diarized_json"],
                    },
                    "temperature": {"type": "number", "minimum": 0, "maximum": 1},
                    "timestamp_granularities[]": {
                        "type": "array",
                        "items": {"type": "string", "enum": ["word", "segment"]},
                    },
                    "stream": {"type": "boolean"},
                    "chunking_strategy": {"type": "string", "enum": ["auto"]},
                    "known_speaker_names[]": {"type": "array", "items": {"type": "string"}},
                    "known_speaker_references[]": {
                        "type": "array",
                        "items": {"type": "string", "pattern": "^data:audio/"},
                    },
                },
                ["file"],
            ),
            "responses": {
                "200": {
                    "description": "The transcript in the requested format",
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "required": ["text"]},
                        },
                        "text/plain": {},
                        "text/vtt": {},
                        "text/event-stream": {},
                    },
                },
                **errors(400, 413, 415, *GUARDED, *UPSTREAM_FAILURES),
            },
        },
    )
