"""Chat, completions and embeddings: relayed to vLLM byte for byte.

Streams are passed on chunk by chunk as they arrive (no parsing, no buffering). When the client
goes away the write fails (or the handler is cancelled) and the upstream connection is closed,
which makes vLLM abort the generation. Upstream errors keep their status and body.

Before relaying, a request waits while vLLM is not serving (`vllm_hold.py`), and a model named
`current` or by its catalog key is rewritten to vLLM's id (`chat_models.py`); a body naming
vLLM's id already is relayed as it came. With `swap_on_request`, a catalog key that is not
loaded starts a swap in Home Assistant and the request waits for it (`model_swap.py`), once;
so does a request finding vLLM stopped in Home Assistant (the swap launches it), also one held
while vLLM was being stopped. Without the option, such a request ends with 503 `vllm_stopped`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import aiohttp
from aiohttp import web

from ..appkeys import CHAT_MODELS, MODEL_SWAPPER, UPSTREAM, VLLM_HOLD
from ..chat_models import NOT_LOADED, ChatModels
from ..errors import ApiError, UpstreamError
from ..openapi import GUARDED, OBJECT, UPSTREAM_FAILURES, add_route, errors
from ..request_body import read_json_object
from ..vllm_hold import HOLDABLE_CODES, MAX_RESENDS, RESENDABLE_CODES, UNAVAILABLE, VLLM_STOPPED

_SSE = "text/event-stream"


class _CoalescingStreamResponse(web.StreamResponse):
    """A stream whose headers go out with the first body chunk (as web.Response does)."""

    _send_headers_immediately = False


async def _open_when_serving(
    request: web.Request, path: str, body: bytes, payload: Mapping[str, Any]
) -> aiohttp.ClientResponse:
    """Start the vLLM request once vLLM serves, naming the model by vLLM's id."""
    hold = request.app[VLLM_HOLD]
    models = request.app[CHAT_MODELS]
    upstream = request.app[UPSTREAM]
    swapper = request.app.get(MODEL_SWAPPER)
    name = payload.get("model")
    if swapper is not None:
        swapper.admit(name)
    stream = payload.get("stream") is True
    deadline = hold.deadline()
    retried_stale_name = False
    swapped = False
    resends = 0
    while True:
        if swapper is not None and isinstance(name, str) and swapper.target == name:
            await swapper.join(name, deadline)  # the swap to it runs: no use asking vLLM
            swapped = True
        if swapper is not None and isinstance(name, str) and not swapped and not hold.serving:
            swapped = await swapper.start_stopped(name, deadline)  # a stopped vLLM, not a swap
        try:
            await hold.until_serving(deadline)
        except ApiError as err:
            # Found stopped while held (it was being stopped): start it, as for a request
            # arriving now; or wait on while a start or swap of another model runs.
            if err.code != VLLM_STOPPED or swapper is None or swapped or not isinstance(name, str):
                raise
            swapped = await swapper.start_stopped(name, deadline, fresh=True)
            if not swapped and swapper.target is None:
                raise
            continue
        try:
            relayed, renamed = await _named_for_vllm(models, body, payload)
            resp = await upstream.open_vllm(path, relayed, request.headers, stream=stream)
        except UpstreamError as err:
            if hold.max_held == 0:
                raise
            if err.code in RESENDABLE_CODES and resends < MAX_RESENDS:
                resends += 1
            elif err.code not in HOLDABLE_CODES:
                raise
            models.forget()
            if (
                err.code == UNAVAILABLE
                and swapper is not None
                and isinstance(name, str)
                and not swapped
                and await swapper.start_stopped(name, deadline)
            ):
                swapped = True
                continue
            hold.mark_down()
            continue
        except ApiError as err:
            if err.code != NOT_LOADED or swapper is None or not isinstance(name, str):
                raise
            if swapped:
                raise _not_served_after_swap(name, models) from err
            await swapper.swap_to(name, err, deadline)
            swapped = True
            continue
        if resp.status == 503 and hold.max_held > 0:  # loading a model
            resp.release()
            models.forget()
            hold.mark_down()
            continue
        if resp.status >= 500 and resp.status != 503:
            # vLLM failing the request itself (a dead engine): 503 + Retry-After and a wedge
            # report, as transcriptions do, instead of relaying the 500.
            error = await upstream.vllm_error(resp)
            resp.release()
            raise error
        if resp.status == 404 and renamed and not retried_stale_name:
            # The cached id went stale (a swap finished unseen): learn the new one, once.
            resp.release()
            models.forget()
            retried_stale_name = True
            continue
        return resp


def _not_served_after_swap(name: str, models: ChatModels) -> ApiError:
    served = models.catalog_key or "another model"
    return ApiError(
        502,
        f"Home Assistant swapped to {name!r}, but vLLM serves {served} now (did something "
        "else swap it meanwhile?)",
        code="model_swap_failed",
    )


async def _named_for_vllm(
    models: ChatModels, body: bytes, payload: Mapping[str, Any]
) -> tuple[bytes, bool]:
    """The body to relay and whether its model name was rewritten."""
    name = payload.get("model")
    if not isinstance(name, str):
        return body, False  # vLLM serves its one model when none is named
    real = await models.resolve(name)
    if real == name:
        return body, False
    return json.dumps({**payload, "model": real}).encode(), True


async def _relay(request: web.Request, path: str) -> web.StreamResponse:
    body, payload = await read_json_object(request)
    if "model" in payload and not isinstance(payload["model"], str):
        # OpenAI's answer; vLLM would say 404, and the swap and hold logic need a name.
        raise ApiError(
            400,
            "Invalid type for 'model': expected a string, but got "
            f"{type(payload['model']).__name__}.",
            code="invalid_type",
            param="model",
        )
    upstream = request.app[UPSTREAM]
    resp = await _open_when_serving(request, path, body, payload)
    out: web.StreamResponse | None = None
    try:
        content_type = resp.headers.get("Content-Type", "application/json")
        if not content_type.startswith(_SSE):
            data = await resp.read()
            resp.release()
            return web.Response(
                status=resp.status, body=data, headers={"Content-Type": content_type}
            )
        # Wait for vLLM's first chunk before answering: headers and that chunk then leave in
        # one packet, and a failure before it is still a proper JSON error.
        first = await resp.content.readany()
        out = _CoalescingStreamResponse(
            status=resp.status,
            headers={
                "Content-Type": content_type,
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            },
        )
        await out.prepare(request)
        await out.write(first)
        async for chunk in resp.content.iter_any():
            await out.write(chunk)
        resp.release()
        await out.write_eof()
        return out
    except ConnectionResetError:
        # The client went away (aiohttp's write error is also a ClientError): not vLLM's fault.
        raise
    except (aiohttp.ClientError, TimeoutError) as err:
        if out is None:
            raise upstream.relay_failure(err) from err
        # Headers are gone already: end the stream; the client sees no [DONE] and knows.
        upstream.relay_failure(err)
        return out
    finally:
        # No-op after release(); otherwise (client gone, error, cancel) drops the connection
        # so vLLM stops generating.
        resp.close()


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """POST /v1/chat/completions → vLLM."""
    return await _relay(request, "/v1/chat/completions")


async def completions(request: web.Request) -> web.StreamResponse:
    """POST /v1/completions → vLLM."""
    return await _relay(request, "/v1/completions")


async def embeddings(request: web.Request) -> web.StreamResponse:
    """POST /v1/embeddings → vLLM."""
    return await _relay(request, "/v1/embeddings")


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


def _relayed_operation(summary: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "summary": summary,
        "description": "Relayed to vLLM unchanged; vLLM's own errors keep their status and body.",
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": {
            "200": {
                "description": "vLLM's answer, or its server-sent event stream when stream=true",
                "content": {"application/json": {"schema": OBJECT}, "text/event-stream": {}},
            },
            **errors(400, 404, 413, 422, *GUARDED, *UPSTREAM_FAILURES),
        },
    }


def setup(app: web.Application) -> None:
    """Register the relayed routes, each with its OpenAPI operation."""
    add_route(
        app,
        "POST",
        "/v1/chat/completions",
        chat_completions,
        _relayed_operation(
            "Chat completion (vLLM)",
            {
                "type": "object",
                "required": ["model", "messages"],
                "properties": {
                    "model": {"type": "string"},
                    "messages": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 4,
                        "items": _CHAT_MESSAGE,
                    },
                    **_SAMPLING,
                },
            },
        ),
    )
    add_route(
        app,
        "POST",
        "/v1/completions",
        completions,
        _relayed_operation(
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
    )
    add_route(
        app,
        "POST",
        "/v1/embeddings",
        embeddings,
        _relayed_operation(
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
    )
