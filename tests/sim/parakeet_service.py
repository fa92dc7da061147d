"""The Parakeet ASR container's HTTP server: health, models and OpenAI-style transcriptions."""

from __future__ import annotations

import time
from concurrent.futures import Executor
from typing import Any

from aiohttp import web

from tests.sim.config import PARAKEET_MODEL, SimConfig
from tests.sim.containers import Container
from tests.sim.diarization import add_diarization_routes
from tests.sim.faults import FaultState
from tests.sim.multipart_form import FormError, read_form
from tests.sim.recognizer import Recognition, Recognizer
from tests.sim.service import WEDGE_ERROR, SimService
from tests.sim.wav_input import AudioInputError, DecodedAudio, decode_wav

RESPONSE_FORMATS = ("json", "text", "verbose_json")


def error(status: int, message: str) -> web.Response:
    # FastAPI's error body, as the container's server is FastAPI/uvicorn.
    return web.json_response({"detail": message}, status=status)


class ParakeetService(SimService):
    """Speech-to-text with real recognition; `wedged` makes work requests fail like a CUDA wedge."""

    name = "parakeet"

    def __init__(
        self, container: Container, faults: FaultState, config: SimConfig, executor: Executor
    ) -> None:
        # Recognition runs in its own worker processes, one decoder each, so
        # `parakeet_decoders` requests are decoded at once (the shared executor is Magpie's).
        del executor
        self.recognizer = Recognizer(config.parakeet_decoders)
        self.model = PARAKEET_MODEL
        self.transcriptions = 0  # successful transcriptions (for test assertions)
        super().__init__(container, faults, config)

    def starting_log(self) -> list[str]:
        return [
            *super().starting_log(),
            f"Loading {self.model} on cuda:0 ...",
            "[NeMo I] Model EncDecRNNTBPEModel was successfully restored.",
        ]

    def ready_log(self) -> list[str]:
        return [
            "INFO:     Application startup complete.",
            "INFO:     Uvicorn running on http://0.0.0.0:8000 (Press CTRL+C to quit)",
        ]

    async def shutdown(self) -> None:
        await super().shutdown()
        # Waits for a decode still running (they are short), as the cluster's executor does;
        # a helper thread here would outlive the test and trip HA's thread-leak check.
        self.recognizer.close()

    async def recognize(self, audio: DecodedAudio) -> Recognition:
        return await self.recognizer.recognize(audio.pcm16)

    def log_wedge(self) -> None:
        """The traceback the wedged container prints on each failing request."""
        self.container.log("ERROR:    Exception in ASGI application")
        self.container.log("Traceback (most recent call last):")
        self.container.log('  File "/app/main.py", line 212, in transcribe')
        self.container.log(f"RuntimeError: {WEDGE_ERROR}")

    def build_routes(self, app: web.Application) -> None:
        app[PARAKEET_KEY] = self
        app.router.add_get("/health", health)
        app.router.add_get("/v1/models", models)
        app.router.add_post("/v1/audio/transcriptions", transcriptions)
        add_diarization_routes(app, self)


PARAKEET_KEY = web.AppKey("parakeet", ParakeetService)


async def health(request: web.Request) -> web.Response:
    service = request.app[PARAKEET_KEY]
    # A wedged CUDA context does not show here: the process is alive and the model is "loaded".
    return web.json_response(
        {"status": "ok", "model": service.model, "model_loaded": True, "device": "cuda"}
    )


async def models(request: web.Request) -> web.Response:
    service = request.app[PARAKEET_KEY]
    return web.json_response(
        {
            "object": "list",
            "data": [
                {
                    "id": service.model,
                    "object": "model",
                    "created": 1735689600,
                    "owned_by": "nvidia",
                }
            ],
        }
    )


async def transcriptions(request: web.Request) -> web.StreamResponse:
    service = request.app[PARAKEET_KEY]
    started = time.monotonic()
    try:
        form = await read_form(request, service.config.max_upload_bytes)
    except FormError as err:
        return error(err.status, str(err))
    data = form.files.get("file")
    if data is None:
        return error(400, "Missing required form field 'file'.")
    response_format = form.first("response_format", "json") or "json"
    if response_format not in RESPONSE_FORMATS:
        return error(
            400,
            f"Unsupported response_format '{response_format}'; "
            f"use one of {', '.join(RESPONSE_FORMATS)}.",
        )
    try:
        audio = decode_wav(data)
    except AudioInputError as err:
        return error(400, str(err))
    if service.wedged:
        service.log_wedge()
        return error(500, WEDGE_ERROR)
    result = await service.recognize(audio)
    service.transcriptions += 1
    language = form.first("language", "en") or "en"
    if response_format == "text":
        return web.Response(text=result.text + "\n", content_type="text/plain")
    if response_format == "json":
        return web.json_response({"text": result.text})
    granularities = set(form.values("timestamp_granularities[]", "timestamp_granularities"))
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": language,
        "duration": round(audio.duration, 3),
        "text": result.text,
        "segments": [
            {
                "id": 0,
                "seek": 0,
                "start": result.words[0].start if result.words else 0.0,
                "end": result.words[-1].end if result.words else 0.0,
                "text": result.text,
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": 0.0,
                "compression_ratio": 1.0,
                "no_speech_prob": 0.0,
            }
        ]
        if result.words
        else [],
        "processing_seconds": round(time.monotonic() - started, 3),
    }
    if not granularities or "word" in granularities:
        body["words"] = [{"word": w.word, "start": w.start, "end": w.end} for w in result.words]
    return web.json_response(body)
