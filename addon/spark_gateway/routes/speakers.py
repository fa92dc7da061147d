"""Speaker-attributed transcription endpoints (owned by the diarization engineer)."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register the speaker routes on the gateway app (none yet)."""
