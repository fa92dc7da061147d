"""HTTP routes, one module per group."""

from __future__ import annotations

from aiohttp import web

from . import health, speakers


def setup_routes(app: web.Application) -> None:
    """Register every route group on the app."""
    health.setup(app)
    speakers.setup(app)
