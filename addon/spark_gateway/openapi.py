"""The OpenAPI 3.1 document of the gateway, built from the routes the app really has.

Each registered route must have an operation here (or one registered by its module through
`document_operation`); a test checks that the document and the router agree both ways.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from aiohttp import web

from . import __version__
from .audio_codec import SPEECH_FORMATS

EXTRA_OPERATIONS: Final = web.AppKey("openapi_extra", dict[tuple[str, str], dict[str, Any]])

_ERROR: Final = {"$ref": "#/components/responses/Error"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(status): _ERROR for status in statuses}


_UPSTREAM_FAILURES: Final = (502, 503, 504)
_GUARDED: Final = (401, 429)  # every route with a key (sent, or required) can answer these

_OBJ: Final = {"type": "object"}
_MODEL_CARD: Final = {
    "type": "object",
    "required": ["id", "object"],
    "properties": {
        "id": {"type": "string"},
        "object": {"type": "string"},
        "created": {"type": "integer"},
        "owned_by": {"type": "string"},
    },
}
_CHAT_MESSAGE: Final = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "role": {"type": "string", "enum": ["system", "user", "assistant"]},
        "content": {"type": "string", "maxLength": 2000},
    },
}
_SAMPLING: Final = {
    "max_tokens": {"type": "integer", "minimum": 1, "maximum": 64},
    "stream": {"type": "boolean"},
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
}


def _relay(summary: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "summary": summary,
        "description": "Relayed to vLLM unchanged; vLLM's own errors keep their status and body.",
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": {
            "200": {
                "description": "vLLM's answer, or its server-sent event stream when stream=true",
                "content": {"application/json": {"schema": _OBJ}, "text/event-stream": {}},
            },
            **_errors(400, 404, 413, 422, *_GUARDED, *_UPSTREAM_FAILURES),
        },
    }


def _audio_upload(fields: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "required": required, "properties": fields}
            }
        },
    }


_FILE: Final = {"type": "string", "format": "binary"}

OPERATIONS: Final[dict[tuple[str, str], dict[str, Any]]] = {
    ("/health", "get"): {
        "summary": "Liveness (no upstream calls)",
        "security": [],
        "responses": {"200": _json({"type": "object", "required": ["status"]})},
    },
    ("/ready", "get"): {
        "summary": "Readiness: every configured upstream answers its health check",
        "security": [],
        "responses": {
            "200": _json({"type": "object", "required": ["status", "services"]}),
            "503": _json({"type": "object", "required": ["status", "services"]}, "Not ready"),
        },
    },
    ("/metrics", "get"): {
        "summary": "Prometheus metrics",
        "security": [],
        "responses": {"200": {"description": "OK", "content": {"text/plain": {}}}},
    },
    ("/openapi.json", "get"): {
        "summary": "This document",
        "security": [],
        "responses": {"200": _json(_OBJ)},
    },
    ("/v1/models", "get"): {
        "summary": "The chat models (vLLM's, plus the `current` alias); no key needed",
        "security": [],
        "responses": {
            "200": _json(
                {
                    "type": "object",
                    "required": ["object", "data"],
                    "properties": {"data": {"type": "array", "items": _MODEL_CARD}},
                }
            ),
            **_errors(*_GUARDED),
        },
    },
    ("/v1/models/{model}", "get"): {
        "summary": "One model card",
        "parameters": [
            {"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}
        ],
        "responses": {"200": _json(_MODEL_CARD), **_errors(404, *_GUARDED)},
    },
    ("/v1/audio/models", "get"): {
        "summary": "Speech models, in the shape Open WebUI reads; no key needed",
        "security": [],
        "responses": {
            "200": _json({"type": "object", "required": ["models"]}),
            **_errors(*_GUARDED),
        },
    },
    ("/v1/audio/voices", "get"): {
        "summary": "Magpie voices and aliases, in the shape Open WebUI reads; no key needed",
        "security": [],
        "responses": {
            "200": _json({"type": "object", "required": ["voices"]}),
            **_errors(*_GUARDED),
        },
    },
    ("/v1/chat/completions", "post"): _relay(
        "Chat completion (vLLM)",
        {
            "type": "object",
            "required": ["model", "messages"],
            "properties": {
                "model": {"type": "string"},
                "messages": {"type": "array", "minItems": 1, "maxItems": 4, "items": _CHAT_MESSAGE},
                **_SAMPLING,
            },
        },
    ),
    ("/v1/completions", "post"): _relay(
        "Text completion (vLLM)",
        {
            "type": "object",
            "required": ["model", "prompt"],
            "properties": {
                "model": {"type": "string"},
                "prompt": {"type": "string", "maxLength": 2000},
                **_SAMPLING,
            },
        },
    ),
    ("/v1/embeddings", "post"): _relay(
        "Embeddings (vLLM)",
        {
            "type": "object",
            "required": ["model", "input"],
            "properties": {
                "model": {"type": "string"},
                "input": {"type": "string", "maxLength": 2000},
            },
        },
    ),
    ("/v1/audio/transcriptions", "post"): {
        "summary": "Speech to text (Parakeet); any common audio format, recognised from the bytes",
        "requestBody": _audio_upload(
            {
                "file": _FILE,
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
            **_errors(400, 413, 415, *_GUARDED, *_UPSTREAM_FAILURES),
        },
    },
    ("/v1/audio/speech", "post"): {
        "summary": "Text to speech (Magpie); mp3 unless another format is asked for",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["input"],
                        "properties": {
                            "model": {"type": "string"},
                            "input": {"type": "string", "minLength": 1, "maxLength": 4096},
                            "voice": {"type": "string"},
                            "instructions": {"type": "string"},
                            "response_format": {"type": "string", "enum": list(SPEECH_FORMATS)},
                            "speed": {"type": "number", "minimum": 0.25, "maximum": 4.0},
                            "stream_format": {"type": "string", "enum": ["audio", "sse"]},
                        },
                    }
                }
            },
        },
        "responses": {
            "200": {
                "description": "Audio (or server-sent events with stream_format=sse)",
                "content": {
                    "audio/mpeg": {},
                    "audio/ogg": {},
                    "audio/aac": {},
                    "audio/flac": {},
                    "audio/wav": {},
                    "audio/pcm": {},
                    "text/event-stream": {},
                },
            },
            **_errors(400, 413, *_GUARDED, *_UPSTREAM_FAILURES),
        },
    },
    ("/api/endpoints", "get"): {
        "summary": "Where each GPU service lives and whether it is ready",
        "responses": {
            "200": _json({"type": "object", "required": ["vllm", "parakeet", "magpie"]}),
            **_errors(*_GUARDED),
        },
    },
    ("/api/health-event", "post"): {
        "summary": "Report a service's health as seen by an app; forwarded to Home Assistant",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["service", "ok"],
                        "properties": {
                            "service": {"type": "string", "minLength": 1, "maxLength": 64},
                            "ok": {"type": "boolean"},
                            "source": {"type": "string", "maxLength": 128},
                            "error": {"type": "string", "maxLength": 2000},
                            "ms": {"type": "number", "minimum": 0},
                        },
                    }
                }
            },
        },
        "responses": {
            "202": _json({"type": "object", "required": ["accepted", "forwarded"]}, "Accepted"),
            **_errors(400, *_GUARDED),
        },
    },
    ("/api/audio/transcribe-with-speakers", "post"): {
        "summary": "Speaker-attributed transcript (who said what)",
        "requestBody": _audio_upload(
            {"file": _FILE, "response_format": {"type": "string"}}, ["file"]
        ),
        "responses": {
            "200": {
                "description": "JSON transcript with speakers, or srt/vtt/text",
                "content": {
                    "application/json": {"schema": _OBJ},
                    "text/plain": {},
                    "text/vtt": {},
                    "text/event-stream": {},
                },
            },
            **_errors(400, 413, 415, *_GUARDED, *_UPSTREAM_FAILURES),
        },
    },
    ("/api/audio/diarize-chunk", "post"): {
        "summary": "Diarization of one chunk with voice fingerprints (Parakeet container)",
        "requestBody": _audio_upload({"file": _FILE}, ["file"]),
        "responses": {
            "200": _json({"type": "object", "required": ["segments"]}),
            **_errors(400, 413, 415, *_GUARDED, *_UPSTREAM_FAILURES),
        },
    },
}


def document_operation(
    app: web.Application, path: str, method: str, operation: dict[str, Any]
) -> None:
    """Describe a route that OPERATIONS does not know (for route modules owned elsewhere)."""
    app.setdefault(EXTRA_OPERATIONS, {})[(path, method.lower())] = operation


def routed_operations(app: web.Application) -> set[tuple[str, str]]:
    """(path, method) of every route the app serves (HEAD/OPTIONS added by aiohttp skipped)."""
    found: set[tuple[str, str]] = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "OPTIONS", "*") or route.resource is None:
            continue
        path = route.resource.canonical.replace("{model:.+}", "{model}")
        found.add((path, route.method.lower()))
    return found


def build_document(app: web.Application) -> dict[str, Any]:
    """The OpenAPI document for the routes `app` really serves."""
    known = dict(OPERATIONS)
    if EXTRA_OPERATIONS in app:
        extra: dict[tuple[str, str], dict[str, Any]] = app[EXTRA_OPERATIONS]
        known.update(extra)
    paths: dict[str, dict[str, Any]] = {}
    for path, method in sorted(routed_operations(app)):
        operation = known.get((path, method))
        if operation is None:
            operation = {"summary": "Undocumented", "responses": {"default": {"description": ""}}}
        item = copy.deepcopy(operation)
        item.setdefault("operationId", f"{method}_{path.strip('/').replace('/', '_')}")
        paths.setdefault(path, {})[method] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Spark Control gateway",
            "version": __version__,
            "description": "OpenAI-compatible chat, speech-to-text and text-to-speech for the LAN.",
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {
                "Error": _json(
                    {
                        "type": "object",
                        "required": ["error"],
                        "properties": {
                            "error": {
                                "type": "object",
                                "required": ["message", "type"],
                                "properties": {
                                    "message": {"type": "string"},
                                    "type": {"type": "string"},
                                    # vLLM's relayed errors carry the status as code.
                                    "code": {"type": ["string", "integer", "null"]},
                                    "param": {"type": ["string", "null"]},
                                },
                            }
                        },
                    },
                    "OpenAI-style error",
                )
            },
        },
    }


async def openapi_json(request: web.Request) -> web.Response:
    """GET /openapi.json."""
    return web.json_response(build_document(request.app))


def setup(app: web.Application) -> None:
    """Register the document's route."""
    app.router.add_get("/openapi.json", openapi_json)
