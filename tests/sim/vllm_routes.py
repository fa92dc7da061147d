"""vLLM's HTTP routes: health, models, metrics, chat/completions (JSON and SSE), embeddings."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from aiohttp import web

from tests.sim.service import WEDGE_ERROR
from tests.sim.vllm_service import LOADING, READY, VLLM_VERSION, VllmService
from tests.sim.vllm_text import (
    chat_prompt_tokens,
    count_tokens,
    embedding,
    generate_tokens,
    messages_text,
)

VLLM_KEY = web.AppKey("vllm", VllmService)


class EngineDead(Exception):
    """vLLM's EngineDeadError: its exception handler answers a bare 500."""


class RequestError(Exception):
    """A request vLLM rejects; rendered as its JSON error body."""

    def __init__(self, status: int, message: str, error_type: str, param: str | None = None):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.param = param


def error_response(
    status: int, message: str, error_type: str, param: str | None = None
) -> web.Response:
    body = {"error": {"message": message, "type": error_type, "param": param, "code": status}}
    return web.json_response(body, status=status)


def add_vllm_routes(app: web.Application, service: VllmService) -> None:
    app[VLLM_KEY] = service
    app.router.add_get("/health", health)
    app.router.add_get("/version", version)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/embeddings", embeddings)


async def health(request: web.Request) -> web.Response:
    service = request.app[VLLM_KEY]
    if service.phase != READY or service.engine_dead:
        # vLLM answers 503 while loading and once its engine core is dead.
        return web.Response(status=503, text="")
    return web.Response(status=200)


async def version(request: web.Request) -> web.Response:
    return web.json_response({"version": VLLM_VERSION})


async def metrics(request: web.Request) -> web.Response:
    body = request.app[VLLM_KEY].metrics.render()
    return web.Response(
        body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
    )


async def models(request: web.Request) -> web.Response:
    service = request.app[VLLM_KEY]
    if service.phase != READY:
        return error_response(
            503, "The server is still loading the model.", "ServiceUnavailableError"
        )
    created = int(service.loaded_at)
    card = {
        "id": service.model,
        "object": "model",
        "created": created,
        "owned_by": "vllm",
        "root": service.model,
        "parent": None,
        "max_model_len": service.max_model_len,
        "permission": [
            {
                "id": f"modelperm-{uuid.uuid5(uuid.NAMESPACE_URL, service.model).hex}",
                "object": "model_permission",
                "created": created,
                "allow_create_engine": False,
                "allow_sampling": True,
                "allow_logprobs": True,
                "allow_search_indices": False,
                "allow_view": True,
                "allow_fine_tuning": False,
                "organization": "*",
                "group": None,
                "is_blocking": False,
            }
        ],
    }
    return web.json_response({"object": "list", "data": [card]})


async def _read_body(request: web.Request, service: VllmService) -> dict[str, Any]:
    if service.phase == LOADING:
        raise RequestError(503, "The server is still loading the model.", "ServiceUnavailableError")
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RequestError(400, f"Invalid JSON body: {err}", "BadRequestError") from err
    if not isinstance(body, dict):
        raise RequestError(400, "The request body must be a JSON object.", "BadRequestError")
    model = body.get("model", service.model)
    if model != service.model:
        raise RequestError(404, f"The model `{model}` does not exist.", "NotFoundError", "model")
    if service.wedged:
        raise RequestError(500, WEDGE_ERROR, "InternalServerError")
    if service.engine_dead:
        raise EngineDead
    return body


def _max_tokens(body: dict[str, Any], service: VllmService, prompt_tokens: int) -> tuple[int, bool]:
    """(tokens to generate, whether the limit was the caller's)."""
    raw = body.get("max_completion_tokens", body.get("max_tokens"))
    if raw is None:
        return service.config.default_max_tokens, False
    if not isinstance(raw, int) or isinstance(raw, bool) or raw < 1:
        raise RequestError(
            400, "max_tokens must be a positive integer.", "BadRequestError", "max_tokens"
        )
    if prompt_tokens + raw > service.max_model_len:
        raise RequestError(
            400,
            f"This model's maximum context length is {service.max_model_len} tokens. However, you "
            f"requested {prompt_tokens + raw} tokens ({prompt_tokens} in the messages, {raw} in "
            "the completion). Please reduce the length of the messages or completion.",
            "BadRequestError",
            "max_tokens",
        )
    return raw, True


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "completion_tokens": completion_tokens,
        "prompt_tokens_details": None,
    }


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _generate(request, chat=True)


async def completions(request: web.Request) -> web.StreamResponse:
    return await _generate(request, chat=False)


async def _generate(request: web.Request, *, chat: bool) -> web.StreamResponse:
    arrived = time.monotonic()
    service = request.app[VLLM_KEY]
    try:
        body = await _read_body(request, service)
        if body.get("stream_options") and not body.get("stream"):
            # vLLM's chat and completion request models refuse it (a truthy check, as there).
            raise RequestError(
                400,
                "Stream options can only be defined when `stream=True`.",
                "BadRequestError",
                "stream_options",
            )
        if chat:
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages:
                raise RequestError(
                    400, "messages must be a non-empty list.", "BadRequestError", "messages"
                )
            prompt = messages_text(messages)
            prompt_tokens = chat_prompt_tokens(messages)
        else:
            raw_prompt = body.get("prompt")
            if not isinstance(raw_prompt, str):
                raise RequestError(400, "prompt must be a string.", "BadRequestError", "prompt")
            prompt = raw_prompt
            prompt_tokens = count_tokens(prompt)
        max_tokens, limited = _max_tokens(body, service, prompt_tokens)
    except RequestError as err:
        return error_response(err.status, str(err), err.error_type, err.param)
    except EngineDead:
        return web.Response(status=500, text="Internal Server Error")

    tokens = generate_tokens(prompt, max_tokens)
    finish_reason = "length" if limited else "stop"
    request_id = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
    created = int(time.time())
    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return await _stream(
            request,
            service,
            tokens,
            prompt_tokens,
            arrived,
            _ChunkShape(chat, request_id, created, service.model, finish_reason, include_usage),
        )

    try:
        text = "".join(
            [token async for token in service.stream_tokens(prompt_tokens, tokens, arrived)]
        )
    except ConnectionResetError:
        # The engine went away under the request: the process is gone, so is the connection.
        if request.transport is not None:
            request.transport.abort()
        raise
    service.metrics.finished(finish_reason)
    choice: dict[str, Any]
    if chat:
        choice = {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": text,
                "reasoning_content": None,
                "tool_calls": [],
            },
            "logprobs": None,
            "finish_reason": finish_reason,
            "stop_reason": None,
        }
    else:
        choice = {
            "index": 0,
            "text": text,
            "logprobs": None,
            "finish_reason": finish_reason,
            "stop_reason": None,
        }
    return web.json_response(
        {
            "id": request_id,
            "object": "chat.completion" if chat else "text_completion",
            "created": created,
            "model": service.model,
            "choices": [choice],
            "usage": _usage(prompt_tokens, len(tokens)),
            "prompt_logprobs": None,
        }
    )


class _ChunkShape:
    """Builds the OpenAI-shaped SSE chunks for one streamed request."""

    def __init__(
        self,
        chat: bool,
        request_id: str,
        created: int,
        model: str,
        finish_reason: str,
        include_usage: bool,
    ) -> None:
        self.chat = chat
        self.request_id = request_id
        self.created = created
        self.model = model
        self.finish_reason = finish_reason
        self.include_usage = include_usage

    def chunk(
        self, content: str | None, *, role: bool = False, finish: bool = False
    ) -> dict[str, Any]:
        choice: dict[str, Any]
        if self.chat:
            delta: dict[str, Any] = {"role": "assistant", "content": ""} if role else {}
            if content is not None:
                delta["content"] = content
            choice = {"index": 0, "delta": delta, "logprobs": None}
        else:
            choice = {"index": 0, "text": content or "", "logprobs": None}
        choice["finish_reason"] = self.finish_reason if finish else None
        return {
            "id": self.request_id,
            "object": "chat.completion.chunk" if self.chat else "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        }

    def usage_chunk(self, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        return {
            "id": self.request_id,
            "object": "chat.completion.chunk" if self.chat else "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": _usage(prompt_tokens, completion_tokens),
        }


def _sse(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


async def _stream(
    request: web.Request,
    service: VllmService,
    tokens: list[str],
    prompt_tokens: int,
    arrived: float,
    shape: _ChunkShape,
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
    await response.prepare(request)
    try:
        if shape.chat:
            await response.write(_sse(shape.chunk(None, role=True)))
        generator = service.stream_tokens(prompt_tokens, tokens, arrived)
        try:
            async for token in generator:
                await response.write(_sse(shape.chunk(token)))
        finally:
            # Closing the generator frees the sequence slot at once when the client went away.
            await generator.aclose()
        await response.write(_sse(shape.chunk("", finish=True)))
        if shape.include_usage:
            await response.write(_sse(shape.usage_chunk(prompt_tokens, len(tokens))))
        await response.write(_sse("[DONE]"))
        service.metrics.finished(shape.finish_reason)
    except ConnectionResetError:
        # The client disconnected: generation stopped with the generator; vLLM aborts the request.
        service.metrics.finished("abort")
        return response
    await response.write_eof()
    return response


async def embeddings(request: web.Request) -> web.Response:
    service = request.app[VLLM_KEY]
    try:
        body = await _read_body(request, service)
    except RequestError as err:
        return error_response(err.status, str(err), err.error_type, err.param)
    except EngineDead:
        return web.Response(status=500, text="Internal Server Error")
    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) else raw
    if (
        not isinstance(inputs, list)
        or not inputs
        or not all(isinstance(item, str) for item in inputs)
    ):
        return error_response(
            400, "input must be a string or a list of strings.", "BadRequestError", "input"
        )
    dimensions = body.get("dimensions", 384)
    if not isinstance(dimensions, int) or not 1 <= dimensions <= 4096:
        return error_response(
            400, "dimensions must be between 1 and 4096.", "BadRequestError", "dimensions"
        )
    prompt_tokens = sum(count_tokens(item) for item in inputs)
    service.metrics.prompt_tokens.inc(prompt_tokens)
    return web.json_response(
        {
            "id": f"embd-{uuid.uuid4().hex}",
            "object": "list",
            "created": int(time.time()),
            "model": service.model,
            "data": [
                {"index": index, "object": "embedding", "embedding": embedding(item, dimensions)}
                for index, item in enumerate(inputs)
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "total_tokens": prompt_tokens,
                "completion_tokens": 0,
                "prompt_tokens_details": None,
            },
        }
    )
