"""The gateway's application factory."""

from __future__ import annotations

import functools
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from . import __version__
from .appkeys import (
    API_KEYS,
    AUDIO_IN_FLIGHT,
    CHAT_MODELS,
    CONFIG,
    DECODER,
    METRICS,
    MODEL_SWAPPER,
    NOTIFIER,
    SESSION,
    SPOOL,
    UPSTREAM,
    VLLM_HOLD,
    VOICEPRINTS,
    VOICES,
)
from .auth import auth_middleware, resolve_api_keys
from .body_deadline import body_deadline_middleware
from .catalog_names import CatalogNames
from .chat_models import ChatModels
from .config import GatewayConfig
from .cors import setup_cors
from .decoder import AudioDecoder, AudioInFlight
from .errors import error_middleware
from .ha_events import HaNotifier
from .limits import concurrency_middleware
from .metrics import GatewayMetrics
from .model_swap import ModelSwapper
from .routes import setup_routes
from .speakers.voiceprints import VoiceprintLibrary
from .spool import Spool, spool_directory
from .upstream import VLLM, UpstreamClient
from .vllm_hold import VllmHold, WaitCap
from .voices import GatewayVoiceCatalog


def create_app(
    config: GatewayConfig, *, clock: Callable[[], float] = time.monotonic
) -> web.Application:
    """Build the gateway: middlewares, routes, and the upstream session's lifecycle.

    `clock` times the listing caches (vLLM's models, Magpie's voices); tests pass their own.
    """
    metrics = GatewayMetrics()
    keys = resolve_api_keys(config)
    spool = Spool(Path(tempfile.gettempdir()))  # replaced by a private directory on startup
    app = web.Application(
        client_max_size=config.max_upload_bytes,
        middlewares=[
            metrics.middleware(),  # outermost: sees the final status of every answer
            error_middleware,
            auth_middleware(keys, required=config.auth_required),
            concurrency_middleware(config.max_concurrent_requests, config.concurrency),
            body_deadline_middleware(config.timeouts.body),  # inside: frees the slot it holds
            spool.middleware(),
        ],
    )
    app[CONFIG] = config
    app[METRICS] = metrics
    app[API_KEYS] = keys
    app[VOICES] = GatewayVoiceCatalog(config, clock=clock)
    app[VOICEPRINTS] = VoiceprintLibrary(config.data_dir / "voiceprints")
    app[SPOOL] = spool
    app[DECODER] = AudioDecoder(workers=config.decode_workers, timeout_s=config.timeouts.decode)
    # Never less than one request's maximum, or a long recording could never be decoded.
    app[AUDIO_IN_FLIGHT] = AudioInFlight(
        max(config.max_audio_in_flight_seconds, config.max_audio_seconds)
    )
    app.cleanup_ctx.append(_spool_directory)
    app.cleanup_ctx.append(functools.partial(_upstream_session, clock=clock))
    setup_routes(app)
    setup_cors(app, config.cors_origins)
    return app


async def _spool_directory(app: web.Application) -> AsyncIterator[None]:
    """Scratch files for audio in a private directory removed on shutdown; decoders ready."""
    async for directory in spool_directory():
        app[SPOOL].directory = directory
        app[DECODER].start_soon()
        yield
        await app[SPOOL].drain()
        await app[DECODER].stop()


async def _upstream_session(
    app: web.Application, *, clock: Callable[[], float]
) -> AsyncIterator[None]:
    """One pooled client session for every upstream call, closed on shutdown."""
    config = app[CONFIG]
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30)
    session = aiohttp.ClientSession(
        connector=connector,
        headers={"User-Agent": f"spark-gateway/{__version__}"},
        auto_decompress=True,
    )
    notifier = HaNotifier.from_config(session, config)
    app[SESSION] = session
    app[NOTIFIER] = notifier
    upstream = UpstreamClient(config, session, notifier, app[METRICS])
    app[UPSTREAM] = upstream
    catalog = CatalogNames(
        session, notifier.api_url, notifier.token, entity_id=config.ha_model_select
    )
    models = ChatModels(upstream, catalog, clock=clock)
    app[CHAT_MODELS] = models
    cap = WaitCap(config.hold_max_requests)  # one bound for the hold and the swap's waiters
    hold = VllmHold(
        lambda: upstream.probe(VLLM),
        models.forget,
        cap=cap,
        timeout_s=config.hold_timeout_s,
        stopped_check=catalog.vllm_stopped if catalog.reachable else None,
    )
    app[VLLM_HOLD] = hold
    swapper = ModelSwapper(catalog, models, cap=cap, turn_wait_s=config.hold_timeout_s)
    if config.swap_on_request:
        app[MODEL_SWAPPER] = swapper
    try:
        yield
    finally:
        await swapper.close()
        await hold.close()
        await notifier.drain()
        await session.close()
