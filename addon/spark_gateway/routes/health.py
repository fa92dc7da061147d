"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from aiohttp import web

from .. import __version__
from ..appkeys import CONFIG, METRICS, UPSTREAM
from ..openapi import add_route, json_result
from ..upstream import MAGPIE, PARAKEET, VLLM


async def health(request: web.Request) -> web.Response:
    """Liveness: the process answers; no upstream is contacted."""
    return web.json_response({"status": "ok", "version": __version__})


async def ready(request: web.Request) -> web.Response:
    """Readiness: 200 when every configured upstream answers its health check, else 503."""
    config = request.app[CONFIG]
    upstream = request.app[UPSTREAM]
    configured = {
        name: url
        for name, url in (
            (VLLM, config.vllm_url),
            (PARAKEET, config.parakeet_url),
            (MAGPIE, config.magpie_url),
        )
        if url
    }
    results = await asyncio.gather(*(upstream.probe(name) for name in configured))
    services = dict(zip(configured, results, strict=True))
    ok = bool(services) and all(services.values())
    return web.json_response(
        {"status": "ok" if ok else "unavailable", "services": services}, status=200 if ok else 503
    )


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition."""
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})


def setup(app: web.Application) -> None:
    """Register the health routes, each with its OpenAPI operation."""
    add_route(
        app,
        "GET",
        "/health",
        health,
        {
            "summary": "Liveness (no upstream calls)",
            "security": [],
            "responses": {"200": json_result({"type": "object", "required": ["status"]})},
        },
    )
    add_route(
        app,
        "GET",
        "/ready",
        ready,
        {
            "summary": "Readiness: every configured upstream answers its health check",
            "security": [],
            "responses": {
                "200": json_result({"type": "object", "required": ["status", "services"]}),
                "503": json_result(
                    {"type": "object", "required": ["status", "services"]}, "Not ready"
                ),
            },
        },
    )
    add_route(
        app,
        "GET",
        "/metrics",
        metrics,
        {
            "summary": "Prometheus metrics",
            "security": [],
            "responses": {"200": {"description": "OK", "content": {"text/plain": {}}}},
        },
    )
