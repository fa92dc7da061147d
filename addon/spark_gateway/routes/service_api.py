"""The gateway's own API: upstream endpoints for other apps, and health reports for HA."""

from __future__ import annotations

import asyncio
from typing import Any

import voluptuous as vol
from aiohttp import web

from ..appkeys import CONFIG, NOTIFIER, UPSTREAM
from ..errors import ApiError, UpstreamError
from ..ha_events import EVENT_HEALTH_REPORT
from ..openapi import GUARDED, add_route, errors, json_result
from ..request_body import read_json_object
from ..upstream import MAGPIE, PARAKEET, VLLM

SERVICES = (VLLM, PARAKEET, MAGPIE)

HEALTH_EVENT_SCHEMA = vol.Schema(
    {
        vol.Required("service"): vol.All(str, vol.Length(min=1, max=64)),
        vol.Required("ok"): bool,
        # The value's own check first: voluptuous' Any reports its first alternative's failure,
        # and None's is only "not a valid value".
        vol.Optional("source"): vol.Any(vol.All(str, vol.Length(max=128)), None),
        vol.Optional("error"): vol.Any(vol.All(str, vol.Length(max=2000)), None),
        vol.Optional("ms"): vol.Any(vol.All(vol.Any(int, float), vol.Range(min=0)), None),
    }
)


async def endpoints(request: web.Request) -> web.Response:
    """Where each GPU service lives and whether to route traffic to it (design contract)."""
    config = request.app[CONFIG]
    upstream = request.app[UPSTREAM]
    vllm_ready, parakeet_ready, magpie_ready, models = await asyncio.gather(
        upstream.probe(VLLM),
        upstream.probe(PARAKEET),
        upstream.probe(MAGPIE),
        _served_model(request),
    )
    body: dict[str, Any] = {
        "vllm": {
            "ready": vllm_ready and models is not None,
            "base_url": f"{config.vllm_url}/v1" if config.vllm_url else None,
            "model": models,
            "openai_compat": True,
        },
        "parakeet": {
            "ready": parakeet_ready,
            "base_url": config.parakeet_url,
            "kind": "stt",
            "model": config.stt_model,
        },
        "magpie": {"ready": magpie_ready, "base_url": config.magpie_url, "kind": "tts"},
    }
    return web.json_response(body)


async def _served_model(request: web.Request) -> str | None:
    if not request.app[CONFIG].vllm_url:
        return None
    try:
        cards = await request.app[UPSTREAM].vllm_models()
    except UpstreamError:
        return None
    return str(cards[0]["id"]) if cards and "id" in cards[0] else None


async def health_event(request: web.Request) -> web.Response:
    """Record an app's view of a service's health: forwarded to HA as an event."""
    _, payload = await read_json_object(request)
    try:
        event = HEALTH_EVENT_SCHEMA(payload)
    except vol.Invalid as err:
        field = ".".join(map(str, err.path)) or None
        raise ApiError(
            400,
            f"invalid health event: {err.msg}" + (f" ({field})" if field else ""),
            code="invalid_health_event",
            param=field,
        ) from err
    # The service's URL as this gateway knows it names the cluster the report is about.
    upstream = _configured_url(request, event["service"])
    if upstream is not None:
        event["upstream"] = upstream
    forwarded = await request.app[NOTIFIER].fire(EVENT_HEALTH_REPORT, event)
    return web.json_response({"accepted": True, "forwarded": forwarded}, status=202)


def _configured_url(request: web.Request, service: str) -> str | None:
    """The gateway's URL of a known, configured service; None otherwise."""
    if service not in SERVICES:
        return None
    try:
        return request.app[UPSTREAM].base_url(service)
    except UpstreamError:
        return None


def setup(app: web.Application) -> None:
    """Register the /api routes, each with its OpenAPI operation."""
    add_route(
        app,
        "GET",
        "/api/endpoints",
        endpoints,
        {
            "summary": "Where each GPU service lives and whether it is ready",
            "responses": {
                "200": json_result({"type": "object", "required": ["vllm", "parakeet", "magpie"]}),
                **errors(*GUARDED),
            },
        },
    )
    add_route(
        app,
        "POST",
        "/api/health-event",
        health_event,
        {
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
                "202": json_result(
                    {"type": "object", "required": ["accepted", "forwarded"]}, "Accepted"
                ),
                **errors(400, *GUARDED),
            },
        },
    )
