"""CORS: closed unless origins are configured (browser apps on other origins opt in)."""

from __future__ import annotations

import aiohttp_cors
from aiohttp import web


def setup_cors(app: web.Application, origins: tuple[str, ...]) -> None:
    """Allow the configured origins on every route; with none, no CORS headers are sent."""
    if not origins:
        return
    options = aiohttp_cors.ResourceOptions(  # type: ignore[no-untyped-call]
        allow_credentials=False,
        expose_headers="*",
        allow_headers=("Authorization", "Content-Type", "x-api-key", "Accept"),
        allow_methods=("GET", "POST"),
        max_age=600,
    )
    cors = aiohttp_cors.setup(app, defaults=dict.fromkeys(origins, options))
    for route in list(app.router.routes()):
        cors.add(route)
