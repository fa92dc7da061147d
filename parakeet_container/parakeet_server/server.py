"""The aiohttp server: health, models, OpenAI-style transcriptions, diarization endpoints.

Errors are JSON `{"detail": ...}` (the FastAPI shape the predecessor's clients know): 400 for
bad input, 413 for too much audio, 500 when a model fails (the gateway treats a 500 as a
wedged CUDA context and has the container restarted), 503 when a model cannot be loaded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Final

import aiohttp
import numpy as np
from aiohttp import web

from . import __version__
from .audio import AudioError, AudioTooLong, read_audio
from .config import ServerConfig
from .diarization import Segment
from .engine import Diarization, SpeechEngine
from .models import ModelLoadError, ModelRegistry

_LOGGER = logging.getLogger(__name__)

ENGINE: Final = web.AppKey("engine", SpeechEngine)
CONFIG: Final = web.AppKey("config", ServerConfig)
RESPONSE_FORMATS: Final = ("json", "text", "verbose_json")


def _error(status: int, detail: str) -> web.Response:
    return web.json_response({"detail": detail}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every failure becomes a JSON answer with the right status; nothing escapes."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except AudioTooLong as err:
        return _error(413, str(err))
    except AudioError as err:
        return _error(400, str(err))
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[CONFIG].max_upload_bytes
        return _error(413, f"upload larger than {limit} bytes")
    except web.HTTPException as err:
        return _error(err.status, err.reason)
    except ModelLoadError as err:
        return _error(503, str(err))
    except Exception as err:
        _LOGGER.exception("inference failed on %s", request.path)
        return _error(500, f"{type(err).__name__}: {err}")


async def _read_capped(part: aiohttp.BodyPartReader, limit: int) -> bytes:
    """The part's bytes, refusing (413) as soon as they pass `limit`; multipart streams are
    not covered by aiohttp's client_max_size."""
    buffer = bytearray()
    while chunk := await part.read_chunk(256 * 1024):
        buffer.extend(chunk)
        if len(buffer) > limit:
            raise AudioTooLong(f"upload larger than {limit} bytes")
    return bytes(buffer)


async def _read_form(request: web.Request) -> tuple[bytes, dict[str, list[str]]]:
    if not request.content_type.startswith("multipart/"):
        raise AudioError("send multipart/form-data with a 'file' field")
    data: bytes | None = None
    fields: dict[str, list[str]] = {}
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, aiohttp.BodyPartReader):
            continue
        if part.name == "file":
            data = await _read_capped(part, request.app[CONFIG].max_upload_bytes)
        elif part.name:
            fields.setdefault(part.name, []).append(await part.text())
    if data is None:
        raise AudioError("the 'file' field is required")
    return data, fields


async def _samples(data: bytes, config: ServerConfig) -> np.ndarray:
    """The upload's 16 kHz samples, read in a thread: decoding Ogg/Opus takes about 4-8 ms
    per second of audio, minutes for a long recording, and /health must answer meanwhile."""
    return await asyncio.to_thread(read_audio, data, max_audio_s=config.max_audio_s)


async def health(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    config = request.app[CONFIG]
    loaded = engine.registry.loaded
    names = {
        "asr": config.asr_model,
        "diarization": config.diarization_model,
        "embedding": config.embedding_model,
    }
    return web.json_response(
        {
            "status": "ok",
            "version": __version__,
            "models": {k: {"name": names[k], "loaded": loaded[k]} for k in names},
            "gpu_memory": engine.registry.loaders.gpu_memory(),
        }
    )


async def models(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    data = [
        {"id": name, "object": "model", "created": 0, "owned_by": "nvidia", "kind": kind}
        for kind, name in (
            ("stt", config.asr_model),
            ("diarization", config.diarization_model),
            ("embedding", config.embedding_model),
        )
    ]
    return web.json_response({"object": "list", "data": data})


async def transcriptions(request: web.Request) -> web.Response:
    started = time.monotonic()
    config = request.app[CONFIG]
    data, fields = await _read_form(request)
    response_format = (fields.get("response_format") or ["json"])[0]
    if response_format not in RESPONSE_FORMATS:
        raise AudioError(f"response_format must be one of {', '.join(RESPONSE_FORMATS)}")
    samples = await _samples(data, config)
    engine = request.app[ENGINE]
    result = await engine.registry.run(lambda: engine.transcribe(samples), lane="asr")
    if response_format == "text":
        return web.Response(text=result.text + "\n", content_type="text/plain")
    if response_format == "json":
        return web.json_response({"text": result.text})
    granularities = fields.get("timestamp_granularities[]", []) + fields.get(
        "timestamp_granularities", []
    )
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": (fields.get("language") or [None])[0],
        "duration": round(result.duration, 3),
        "text": result.text,
        "segments": [
            {
                "id": 0,
                "start": result.words[0].start,
                "end": result.words[-1].end,
                "text": result.text,
            }
        ]
        if result.words
        else [],
        "processing_seconds": round(time.monotonic() - started, 3),
    }
    if not granularities or "word" in granularities:
        body["words"] = [
            {"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3)}
            for w in result.words
        ]
    return web.json_response(body)


def _segment_body(segment: Segment, *, chunk: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "start_s": round(segment.start_s, 3),
        "end_s": round(segment.end_s, 3),
        "speaker": f"speaker_{segment.speaker}",
        "confidence": segment.confidence,
    }
    if chunk:  # only diarize-chunk computes them; null for a segment too short
        body["fingerprint"] = None if segment.fingerprint is None else list(segment.fingerprint)
    return body


def diarization_body(result: Diarization, config: ServerConfig, *, chunk: bool) -> dict[str, Any]:
    """The contract shape (tests/contracts/diarize_chunk.json)."""
    body: dict[str, Any] = {
        "duration": round(result.duration, 3),
        "segments": [_segment_body(s, chunk=chunk) for s in result.segments],
        "speakers_detected": len({s.speaker for s in result.segments}),
        "models": {"diarization": config.diarization_model},
    }
    if chunk:
        body["fingerprints"] = {f"speaker_{k}": v for k, v in result.fingerprints.items()}
        body["fingerprint_speech_s"] = {f"speaker_{k}": v for k, v in result.clean_speech_s.items()}
        body["models"]["embedding"] = config.embedding_model
    return body


async def _diarize(request: web.Request, *, chunk: bool) -> web.Response:
    config = request.app[CONFIG]
    data, _ = await _read_form(request)
    samples = await _samples(data, config)
    engine = request.app[ENGINE]
    result = await engine.registry.run(
        lambda: engine.diarize(samples, fingerprints=chunk), lane="diarization"
    )
    return web.json_response(diarization_body(result, config, chunk=chunk))


async def diarize(request: web.Request) -> web.Response:
    return await _diarize(request, chunk=False)


async def diarize_chunk(request: web.Request) -> web.Response:
    return await _diarize(request, chunk=True)


def create_app(config: ServerConfig, registry: ModelRegistry) -> web.Application:
    """The server app over a model registry (NeMo loaders in production, fakes in tests)."""
    app = web.Application(client_max_size=config.max_upload_bytes, middlewares=[error_middleware])
    app[CONFIG] = config
    app[ENGINE] = SpeechEngine(config, registry)
    app.router.add_get("/health", health)
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/audio/transcriptions", transcriptions)
    app.router.add_post("/v1/audio/diarize", diarize)
    app.router.add_post("/v1/audio/diarize-chunk", diarize_chunk)
    return app
