"""The Magpie TTS NIM's HTTP server: readiness, voices, offline WAV and streamed raw PCM."""

from __future__ import annotations

import re
from concurrent.futures import Executor
from dataclasses import dataclass

from aiohttp import web

from tests.sim.config import MAGPIE_MODEL, SimConfig
from tests.sim.containers import Container
from tests.sim.faults import FaultState
from tests.sim.magpie_voices import LOCALES, default_voice, flite_voice, voice_names
from tests.sim.multipart_form import FormError, read_form
from tests.sim.service import WEDGE_ERROR, SimService
from tests.sim.synthesizer import FliteVoice, SynthesisError, Synthesizer
from tests.sim.wav_output import pcm16_to_wav

DEFAULT_RATE = 22050
MAX_OFFLINE_SECONDS = 20.0  # the NIM caps offline (non-streamed) output at 20 s of audio
_STREAM_CHUNK = 4096
_SSML_TAG = re.compile(r"<[^>]*>")


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message, "code": status}, status=status)


@dataclass
class WavQuirks:
    """Header oddities some TTS servers produce, off by default; tests switch them on."""

    float32: bool = False  # WAV format tag 3 (IEEE float) instead of 16-bit PCM
    list_chunk_after_data: bool = False  # a LIST/INFO chunk after the samples


@dataclass(frozen=True, slots=True)
class SynthesisRequest:
    text: str
    language: str
    voice: FliteVoice
    rate: int


class UntypedStreamResponse(web.StreamResponse):
    """A streamed body sent without Content-Type, as the NIM's synthesize_online does.

    aiohttp fills in application/octet-stream for any body; this takes it out again.
    """

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()
        self.headers.pop("Content-Type", None)


class MagpieService(SimService):
    name = "magpie"

    def __init__(
        self, container: Container, faults: FaultState, config: SimConfig, executor: Executor
    ) -> None:
        self.synthesizer = Synthesizer(executor)
        self.quirks = WavQuirks()
        self.model = MAGPIE_MODEL
        self.syntheses = 0  # completed synthesize calls (for test assertions)
        super().__init__(container, faults, config)

    def starting_log(self) -> list[str]:
        return [
            "INFO: Starting NIM inference server for magpie-tts-multilingual",
            "I1121 tritonserver] Started GRPCInferenceService at 0.0.0.0:50051",
        ]

    def ready_log(self) -> list[str]:
        return ["INFO:     Uvicorn running on http://0.0.0.0:9000", "Magpie TTS NIM is ready."]

    def build_routes(self, app: web.Application) -> None:
        app[MAGPIE_KEY] = self
        app.router.add_get("/v1/health/ready", ready)
        app.router.add_get("/v1/health/live", ready)
        app.router.add_get("/v1/audio/list_voices", list_voices)
        app.router.add_post("/v1/audio/synthesize", synthesize)
        app.router.add_post("/v1/audio/synthesize_online", synthesize_online)


MAGPIE_KEY = web.AppKey("magpie", MagpieService)


async def ready(request: web.Request) -> web.Response:
    return web.json_response({"object": "health.response", "message": "ready", "status": "ready"})


async def list_voices(request: web.Request) -> web.Response:
    return web.json_response({",".join(LOCALES): {"voices": voice_names()}})


class BadRequest(ValueError):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


async def _parse(request: web.Request, service: MagpieService) -> SynthesisRequest:
    try:
        form = await read_form(request, service.config.max_upload_bytes, file_fields=())
    except FormError as err:
        raise BadRequest(str(err), err.status) from err
    text = form.first("text", "") or ""
    if not text.strip():
        raise BadRequest("Field 'text' is required and must not be empty.")
    if len(text) > service.config.magpie_max_chars:
        raise BadRequest(
            f"Text is {len(text)} characters; the limit is "
            f"{service.config.magpie_max_chars} per request."
        )
    language = form.first("language", "en-US") or "en-US"
    if language not in LOCALES:
        raise BadRequest(f"Unsupported language '{language}'. Supported: {', '.join(LOCALES)}.")
    voice_name = form.first("voice") or default_voice(language)
    voice = flite_voice(voice_name)
    if voice is None:
        raise BadRequest(f"Unknown voice '{voice_name}'. See /v1/audio/list_voices.")
    encoding = form.first("encoding", "LINEAR_PCM") or "LINEAR_PCM"
    if encoding != "LINEAR_PCM":
        raise BadRequest(f"Unsupported encoding '{encoding}'; this server supports LINEAR_PCM.")
    raw_rate = form.first("sample_rate_hz", str(DEFAULT_RATE)) or str(DEFAULT_RATE)
    if not raw_rate.isdigit() or not 8000 <= int(raw_rate) <= 48000:
        raise BadRequest(
            f"sample_rate_hz must be an integer between 8000 and 48000, got '{raw_rate}'."
        )
    return SynthesisRequest(text, language, voice, int(raw_rate))


async def _speak(
    request: web.Request,
) -> tuple[MagpieService, SynthesisRequest, bytes] | web.Response:
    service = request.app[MAGPIE_KEY]
    try:
        parsed = await _parse(request, service)
    except BadRequest as err:
        return error(err.status, str(err))
    if service.wedged:
        service.container.log(f"ERROR: Inference failed: {WEDGE_ERROR}")
        return error(500, WEDGE_ERROR)
    try:
        pcm = await service.synthesizer.synthesize(
            spoken_text(parsed.text), parsed.voice, parsed.rate
        )
    except SynthesisError as err:
        return error(500, str(err))
    service.syntheses += 1
    return service, parsed, pcm


def spoken_text(text: str) -> str:
    """What gets spoken: SSML markup (`<speak><prosody ...>`) is dropped, its text kept."""
    if text.lstrip().startswith("<speak"):
        return " ".join(_SSML_TAG.sub(" ", text).split())
    return text


async def synthesize(request: web.Request) -> web.Response:
    result = await _speak(request)
    if isinstance(result, web.Response):
        return result
    service, parsed, pcm = result
    seconds = len(pcm) / 2 / parsed.rate
    if seconds > MAX_OFFLINE_SECONDS:
        return error(
            400,
            f"Synthesized audio is {seconds:.1f} s; offline synthesis is limited to "
            f"{MAX_OFFLINE_SECONDS:.0f} s. Split the text or use /v1/audio/synthesize_online.",
        )
    body = pcm16_to_wav(
        pcm,
        parsed.rate,
        as_float32=service.quirks.float32,
        trailing_list=service.quirks.list_chunk_after_data,
    )
    return web.Response(body=body, content_type="audio/wav")


async def synthesize_online(request: web.Request) -> web.StreamResponse:
    result = await _speak(request)
    if isinstance(result, web.Response):
        return result
    _, _, pcm = result
    # Raw LPCM, no header and (like the NIM) no Content-Type.
    response = UntypedStreamResponse()
    await response.prepare(request)
    for offset in range(0, len(pcm), _STREAM_CHUNK):
        await response.write(pcm[offset : offset + _STREAM_CHUNK])
    await response.write_eof()
    return response
