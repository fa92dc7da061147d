"""POST /v1/audio/speech: OpenAI's TTS request → Magpie, sentence by sentence → chosen format."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from aiohttp import web

from ..appkeys import CONFIG, UPSTREAM, VOICES
from ..audio_codec import (
    SPEECH_FORMATS,
    AudioDecodeError,
    StreamEncoder,
    change_speed,
    content_type,
    decode_to_pcm,
    encode_audio,
)
from ..config import GatewayConfig
from ..errors import ApiError, UpstreamError
from ..openapi import GUARDED, UPSTREAM_FAILURES, add_route, errors
from ..request_body import read_json_object
from ..tts_text import sentences, speech_chunks, split_in_half
from ..upstream import MAGPIE, UpstreamClient, UpstreamRejected
from ..voices import Voice

STREAM_FORMATS = ("audio", "sse")
_PARALLEL_SYNTHESIS = 3  # Magpie requests in flight for one non-streamed answer


@dataclass(frozen=True, slots=True)
class SpeechRequest:
    """A validated OpenAI speech request."""

    text: str
    voice: str
    response_format: str
    speed: float
    stream_format: str | None


def parse_speech_request(payload: Any, config: GatewayConfig) -> SpeechRequest:
    """Validate the JSON body; every problem is a 400 naming the field."""
    if not isinstance(payload, dict):
        raise ApiError(400, "the body must be a JSON object", code="invalid_json")
    text = payload.get("input")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "'input' must be non-empty text", code="invalid_input", param="input")
    if len(text) > config.max_speech_input_chars:
        raise ApiError(
            400,
            f"'input' is longer than {config.max_speech_input_chars} characters",
            code="input_too_long",
            param="input",
        )
    _check_speakable(text)
    voice = payload.get("voice", config.default_voice)
    if isinstance(voice, dict):
        voice = voice.get("id")
    if not isinstance(voice, str) or not voice.strip() or not _is_unicode(voice):
        raise ApiError(400, "'voice' must be a voice name", code="invalid_voice", param="voice")
    fmt = payload.get("response_format") or config.default_speech_format
    if fmt not in SPEECH_FORMATS:
        raise ApiError(
            400,
            f"response_format must be one of {', '.join(SPEECH_FORMATS)}",
            code="unsupported_response_format",
            param="response_format",
        )
    speed = payload.get("speed", 1.0)
    if speed is None:
        speed = 1.0
    if isinstance(speed, bool) or not isinstance(speed, int | float) or not 0.25 <= speed <= 4.0:
        raise ApiError(
            400, "speed must be a number from 0.25 to 4.0", code="invalid_speed", param="speed"
        )
    stream_format = payload.get("stream_format")
    if stream_format is not None and stream_format not in STREAM_FORMATS:
        raise ApiError(
            400,
            "stream_format must be 'audio' or 'sse'",
            code="invalid_stream_format",
            param="stream_format",
        )
    model = payload.get("model")
    if model is not None and not isinstance(model, str):
        raise ApiError(400, "'model' must be a string", code="invalid_model", param="model")
    return SpeechRequest(text.strip(), voice.strip(), fmt, float(speed), stream_format)


MAX_WORD_CHARS = 200  # longer than any word or URL worth reading aloud
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Chinese and Japanese (Magpie's zh-CN and ja-JP) put no spaces between words: their
# characters and punctuation each end a "word", or any paragraph of theirs would be one.
_UNSPACED_SCRIPTS = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def _check_speakable(text: str) -> None:
    """Refuse text Magpie cannot speak: control characters (NUL...) or a "word" of thousands."""
    if not _is_unicode(text):
        raise ApiError(400, "'input' holds a lone UTF-16 surrogate", code="invalid_input",
                       param="input")  # fmt: skip
    control = _CONTROL.search(text)
    if control is not None:
        raise ApiError(
            400,
            f"'input' holds control character U+{ord(control.group()):04X}",
            code="invalid_input",
            param="input",
        )
    longest = max((len(word) for word in _UNSPACED_SCRIPTS.sub(" ", text).split()), default=0)
    if longest > MAX_WORD_CHARS:
        raise ApiError(
            400,
            f"'input' holds a {longest}-character word (at most {MAX_WORD_CHARS} can be spoken)",
            code="invalid_input",
            param="input",
        )


def _is_unicode(text: str) -> bool:
    """False for strings JSON allows but UTF-8 cannot carry (lone surrogates like \\ud800)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Synthesizer:
    """Turns text chunks into samples at the gateway's TTS rate, with speed applied."""

    def __init__(self, upstream: UpstreamClient, voice: Voice, rate: int, speed: float) -> None:
        self._upstream = upstream
        self._voice = voice
        self.rate = rate
        self._speed = speed

    async def samples(self, text: str) -> npt.NDArray[np.int16]:
        """One Magpie request → decoded (whatever WAV flavour it sent) → speed-adjusted."""
        try:
            wav = await self._upstream.synthesize(
                text, voice=self._voice.name, language=self._voice.language, sample_rate=self.rate
            )
        except UpstreamRejected:
            # Magpie refuses text whose audio would pass its 20 s offline cap: halve and retry.
            halves = split_in_half(text)
            if halves is None:
                raise
            first, second = halves
            return np.concatenate([await self.samples(first), await self.samples(second)])
        try:
            pcm = await asyncio.to_thread(decode_to_pcm, wav, rate=self.rate)
        except AudioDecodeError as err:
            raise UpstreamError(
                MAGPIE,
                502,
                f"magpie returned unreadable audio: {err}",
                code="upstream_bad_response",
            ) from err
        if self._speed != 1.0:
            pcm = await asyncio.to_thread(change_speed, pcm, self.rate, self._speed)
        return pcm


async def speech(request: web.Request) -> web.StreamResponse:
    """Synthesize speech; the whole file, or streamed sentence by sentence."""
    config = request.app[CONFIG]
    _, payload = await read_json_object(request)
    req = parse_speech_request(payload, config)
    upstream = request.app[UPSTREAM]
    voice = await request.app[VOICES].resolve(req.voice, upstream)
    synth = Synthesizer(upstream, voice, config.magpie_sample_rate, req.speed)
    if req.stream_format is not None:
        return await _stream(request, req, synth, config)
    chunks = speech_chunks(req.text, config.tts_chunk_chars)
    if not chunks:
        raise ApiError(400, "'input' has nothing to speak", code="invalid_input", param="input")
    limit = asyncio.Semaphore(_PARALLEL_SYNTHESIS)

    async def bounded(text: str) -> npt.NDArray[np.int16]:
        async with limit:
            return await synth.samples(text)

    try:
        # A TaskGroup cancels the other requests as soon as one fails.
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(bounded(c)) for c in chunks]
    except* ApiError as failures:
        raise failures.exceptions[0] from None
    parts = [task.result() for task in tasks]
    samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
    body = await asyncio.to_thread(encode_audio, samples, synth.rate, req.response_format)
    return web.Response(
        body=body, headers={"Content-Type": content_type(req.response_format, synth.rate)}
    )


async def _sentence_audio(
    synth: Synthesizer, texts: list[str]
) -> AsyncGenerator[npt.NDArray[np.int16]]:
    """Samples per sentence, in order, with the next sentence synthesized while one is sent."""
    pending: asyncio.Task[npt.NDArray[np.int16]] | None = None
    try:
        for index, _ in enumerate(texts):
            current = pending or asyncio.ensure_future(synth.samples(texts[index]))
            pending = None
            if index + 1 < len(texts):
                pending = asyncio.ensure_future(synth.samples(texts[index + 1]))
            yield await current
    finally:
        if pending is not None:
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)


async def _stream(
    request: web.Request, req: SpeechRequest, synth: Synthesizer, config: GatewayConfig
) -> web.StreamResponse:
    texts = sentences(req.text, config.tts_chunk_chars)
    if not texts:
        raise ApiError(400, "'input' has nothing to speak", code="invalid_input", param="input")
    audio = _sentence_audio(synth, texts)
    # The first sentence is synthesized before headers go out, so a Magpie failure is still
    # a proper JSON error rather than a truncated stream.
    first = await anext(audio)
    encoder = StreamEncoder(req.response_format, synth.rate)
    sse = req.stream_format == "sse"
    out = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream"
            if sse
            else content_type(req.response_format, synth.rate),
            "Cache-Control": "no-cache",
        }
    )
    await out.prepare(request)

    async def send(data: bytes) -> None:
        if not data:
            return
        if sse:
            event = {"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()}
            await out.write(f"data: {json.dumps(event)}\n\n".encode())
        else:
            await out.write(data)

    try:
        await send(await asyncio.to_thread(encoder.encode, first))
        async for samples in audio:
            await send(await asyncio.to_thread(encoder.encode, samples))
        await send(await asyncio.to_thread(encoder.finish))
        if sse:
            done = {
                "type": "speech.audio.done",
                "usage": {
                    "input_tokens": len(req.text),
                    "output_tokens": 0,
                    "total_tokens": len(req.text),
                },
            }
            await out.write(f"data: {json.dumps(done)}\n\n".encode())
    except ApiError:
        # Mid-stream upstream failure: headers are sent, so end the stream early.
        return out
    finally:
        await audio.aclose()
    await out.write_eof()
    return out


def setup(app: web.Application) -> None:
    """Register the speech route, each with its OpenAPI operation."""
    add_route(
        app,
        "POST",
        "/v1/audio/speech",
        speech,
        {
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
                **errors(400, 413, *GUARDED, *UPSTREAM_FAILURES),
            },
        },
    )
