"""Speaker-attributed transcription endpoints.

- `POST /api/audio/transcribe-with-speakers`: any audio the gateway decodes → who said what,
  as the contract's JSON or as SRT, WebVTT or labelled text (`response_format`).
- `POST /api/audio/diarize-chunk`: one chunk passed to the Parakeet container's
  `/v1/audio/diarize-chunk` (segments, confidence, fingerprints), checked on the way back.

Upstream trouble (wedge → 503 + Retry-After and a report to HA, timeouts → 504) is mapped by
the shared `UpstreamClient`, exactly as for `/v1/audio/transcriptions`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web

from ..appkeys import CONFIG, UPSTREAM, VOICEPRINTS
from ..config import GatewayConfig
from ..decoder import DecodedFile
from ..errors import ApiError, UpstreamError
from ..language_tag import LANGUAGE_TAG
from ..openapi import BINARY_FILE, GUARDED, UPSTREAM_FAILURES, add_route, errors, multipart_body
from ..speakers.formats import (
    CONTENT_TYPES,
    OUTPUT_FORMATS,
    OutputFormat,
    to_contract_json,
    to_srt as speakers_to_srt,
    to_text as speakers_to_text,
    to_vtt as speakers_to_vtt,
)
from ..speakers.parsing import UpstreamFormatError, parse_diarization
from ..speakers.pipeline import SpeakerOptions, transcribe_with_speakers
from ..uploads import decode_upload, read_audio_upload


def speaker_options(config: GatewayConfig) -> SpeakerOptions:
    """The pipeline's tunables from the gateway configuration (the rest at their defaults)."""
    return SpeakerOptions(
        long_audio_threshold_s=config.long_audio_threshold_s,
        chunk_s=config.chunk_target_s,
        overlap_s=config.chunk_overlap_s,
        chunk_concurrency=config.chunk_concurrency,
        min_piece_s=config.speaker_min_piece_s,
        split_distance=config.speaker_split_distance,
        link_threshold=config.speaker_link_threshold,
        rejoin_threshold=config.speaker_rejoin_threshold,
        name_threshold=config.speaker_name_threshold,
        confirm_margin=config.speaker_confirm_margin,
        low_confidence=config.speaker_low_confidence,
    )


async def decode_audio(request: web.Request, upload: Path | bytes) -> DecodedFile:
    """The upload decoded to 16 kHz mono; 400 when it holds no samples."""
    decoded = await decode_upload(request, upload)
    if decoded.duration_s <= 0:
        raise ApiError(400, "the audio holds no samples", code="empty_audio", param="file")
    return decoded


def bad_upstream(err: UpstreamFormatError) -> UpstreamError:
    return UpstreamError("parakeet", 502, f"parakeet returned an unusable answer: {err}",
                         code="upstream_bad_response")  # fmt: skip


async def transcribe_with_speakers_route(request: web.Request) -> web.Response:
    """POST /api/audio/transcribe-with-speakers."""
    upload = await read_audio_upload(request)
    response_format = upload.text("response_format") or "json"
    if response_format not in OUTPUT_FORMATS:
        raise ApiError(400, f"response_format must be one of {', '.join(OUTPUT_FORMATS)}",
                       code="unsupported_response_format", param="response_format")  # fmt: skip
    language = upload.text("language")
    if language is not None and not LANGUAGE_TAG.match(language):
        raise ApiError(400, f"language {language!r} is not a language code",
                       code="invalid_language", param="language")  # fmt: skip
    decoded = await decode_audio(request, upload.audio)
    config = request.app[CONFIG]
    voiceprints = await asyncio.to_thread(request.app[VOICEPRINTS].list)
    try:
        result = await transcribe_with_speakers(
            request.app[UPSTREAM],
            decoded.samples(),
            language=language,
            options=speaker_options(config),
            stt_model=config.stt_model,
            voiceprints=voiceprints,
        )
    except UpstreamFormatError as err:
        raise bad_upstream(err) from err
    fmt: OutputFormat = response_format  # type: ignore[assignment]  # checked above
    if fmt == "json":
        body = to_contract_json(
            result.turns,
            duration_s=result.duration_s,
            language=result.language,
            models=result.models,
            speakers=result.speakers,
            identified={
                name: {"id": match.voiceprint.id, "confidence": match.confidence}
                for name, match in result.names.items()
            },
        )
        return web.json_response(body)
    render = {"srt": speakers_to_srt, "vtt": speakers_to_vtt, "text": speakers_to_text}[fmt]
    # Off the event loop: cutting a 3-hour meeting's turns into cues takes ~0.2 s of CPU.
    text = await asyncio.to_thread(render, result.turns)
    return web.Response(text=text, content_type=CONTENT_TYPES[fmt], charset="utf-8")


async def diarize_chunk_route(request: web.Request) -> web.Response:
    """POST /api/audio/diarize-chunk: the container's answer, after checking its shape."""
    upload = await read_audio_upload(request)
    decoded = await decode_audio(request, upload.audio)
    body: dict[str, Any] = await request.app[UPSTREAM].diarize_chunk(decoded.wav)
    try:
        parse_diarization(body)
    except UpstreamFormatError as err:
        raise bad_upstream(err) from err
    return web.json_response(body)


_ERROR_REF: dict[str, Any] = {"$ref": "#/components/responses/Error"}


def setup(app: web.Application) -> None:
    """Register the speaker routes on the gateway app, with their OpenAPI description."""
    add_route(app, "POST", "/api/audio/transcribe-with-speakers", transcribe_with_speakers_route, {
        "summary": "Speaker-attributed transcript (who said what), long audio in chunks",
        "requestBody": multipart_body({
            "file": BINARY_FILE,
            "response_format": {"type": "string", "enum": list(OUTPUT_FORMATS)},
            "language": {"type": "string", "pattern": LANGUAGE_TAG.pattern},
        }, ["file"]),
        "responses": {
            "200": {
                "description": "The contract JSON, or SRT / WebVTT / labelled text",
                "content": {
                    "application/json": {"schema": {
                        "type": "object",
                        "required": ["duration", "language", "speakers_detected", "segments",
                                     "models"],
                    }},
                    "text/plain": {"schema": {"type": "string"}},
                    "text/vtt": {"schema": {"type": "string"}},
                },
            },
            **errors(400, 413, 415, *GUARDED, *UPSTREAM_FAILURES),
        },
    })  # fmt: skip
    add_route(app, "POST", "/api/audio/diarize-chunk", diarize_chunk_route, {
        "summary": "One chunk's diarization with voice fingerprints (Parakeet container)",
        "requestBody": multipart_body({"file": BINARY_FILE}, ["file"]),
        "responses": {
            "200": {"description": "Segments, confidence, fingerprints", "content": {
                "application/json": {"schema": {
                    "type": "object",
                    "required": ["duration", "segments", "speakers_detected", "fingerprints",
                                 "models"],
                }},
            }},
            **errors(400, 413, 415, *GUARDED, *UPSTREAM_FAILURES),
        },
    })  # fmt: skip
