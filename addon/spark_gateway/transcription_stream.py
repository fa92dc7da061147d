"""`stream=true` transcriptions: Server-Sent Events as OpenAI's SDK consumes them.

The recording is cut at quiet points into chunks (`speakers.chunking`, with a little overlap so
edge words are heard whole); each chunk is transcribed in turn and its words, kept once
(`speakers.dedupe`), go out as one `transcript.text.delta` event as soon as Parakeet answers, so
the first text arrives while the rest of a long file is still being transcribed. A final
`transcript.text.done` carries the whole text. A failure after the first event is sent as an
`{"error": ...}` event, which the SDK raises as an APIError.
"""

from __future__ import annotations

import json
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from aiohttp import web

from .audio_codec import TARGET_RATE, pcm_to_wav
from .errors import ApiError
from .speakers.chunking import plan_chunks, slice_samples
from .speakers.dedupe import owned_words, shift_words
from .speakers.parsing import UpstreamFormatError, parse_transcript
from .speakers.tokens import join_tokens
from .upstream import UpstreamClient

STREAM_CHUNK_S: Final = 30.0  # about one Parakeet call per 30 s: a first delta within seconds
STREAM_OVERLAP_S: Final = 1.0


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


async def stream_transcription(
    request: web.Request,
    upstream: UpstreamClient,
    samples: npt.NDArray[np.int16],
    *,
    language: str | None,
) -> web.StreamResponse:
    """Transcribe chunk by chunk, one delta event per chunk, then the done event."""
    chunks = plan_chunks(samples, TARGET_RATE, chunk_s=STREAM_CHUNK_S, overlap_s=STREAM_OVERLAP_S)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    texts: list[str] = []
    for chunk in chunks:
        wav = pcm_to_wav(np.asarray(slice_samples(samples, TARGET_RATE, chunk)), TARGET_RATE)
        try:
            raw = await upstream.transcribe(
                wav, language=language, response_format="verbose_json", granularities=("word",)
            )
            words = shift_words(parse_transcript(raw).words, chunk.start_s)
        except (ApiError, UpstreamFormatError) as err:
            if not response.prepared:
                raise  # nothing sent yet: a plain JSON error with its status
            await response.write(_event({"error": _error_body(err)}))
            return response
        text = join_tokens(w.text for w in owned_words(words, chunk, is_last=chunk is chunks[-1]))
        if not response.prepared:
            await response.prepare(request)
        if text:
            delta = text if not texts else " " + text
            texts.append(text)
            await response.write(_event({"type": "transcript.text.delta", "delta": delta}))
    if not response.prepared:
        await response.prepare(request)
    await response.write(_event({"type": "transcript.text.done", "text": " ".join(texts)}))
    await response.write_eof()
    return response


def _error_body(err: ApiError | UpstreamFormatError) -> dict[str, Any]:
    if isinstance(err, ApiError):
        return {"message": err.message, "type": err.type, "code": err.code, "param": err.param}
    return {
        "message": f"parakeet: {err}",
        "type": "upstream_error",
        "code": "upstream_bad_response",
    }
