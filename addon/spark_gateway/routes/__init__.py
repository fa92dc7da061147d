"""HTTP routes, one module per group."""

from __future__ import annotations

from aiohttp import web

from .. import openapi
from . import (
    chat,
    health,
    models,
    service_api,
    speaker_library,
    speakers,
    speech,
    transcriptions,
)


def setup_routes(app: web.Application) -> None:
    """Register every route group on the app."""
    health.setup(app)
    models.setup(app)
    chat.setup(app)
    transcriptions.setup(app)
    speech.setup(app)
    service_api.setup(app)
    speakers.setup(app)
    speaker_library.setup(app)
    openapi.setup(app)
