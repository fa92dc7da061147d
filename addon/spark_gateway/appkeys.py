"""Typed keys for the state the gateway keeps on its `web.Application`."""

from __future__ import annotations

from typing import Final

import aiohttp
from aiohttp import web

from .chat_models import ChatModels
from .config import GatewayConfig
from .decoder import AudioDecoder, AudioInFlight
from .ha_events import HaNotifier
from .metrics import GatewayMetrics
from .model_swap import ModelSwapper
from .speakers.voiceprints import VoiceprintLibrary
from .spool import Spool
from .upstream import UpstreamClient
from .vllm_hold import VllmHold
from .voices import GatewayVoiceCatalog

CONFIG: Final = web.AppKey("config", GatewayConfig)
METRICS: Final = web.AppKey("metrics", GatewayMetrics)
VOICES: Final = web.AppKey("voices", GatewayVoiceCatalog)
# Enrolled speakers, one file each under <data_dir>/voiceprints.
VOICEPRINTS: Final = web.AppKey("voiceprints", VoiceprintLibrary)
# The API keys in force: configured ones, or the one generated and persisted on first start.
API_KEYS: Final = web.AppKey("api_keys", tuple[str, ...])
# Set while the app runs (created in a cleanup_ctx, closed on shutdown).
SESSION: Final = web.AppKey("session", aiohttp.ClientSession)
NOTIFIER: Final = web.AppKey("notifier", HaNotifier)
UPSTREAM: Final = web.AppKey("upstream", UpstreamClient)
SPOOL: Final = web.AppKey("spool", Spool)
DECODER: Final = web.AppKey("decoder", AudioDecoder)
CHAT_MODELS: Final = web.AppKey("chat_models", ChatModels)
VLLM_HOLD: Final = web.AppKey("vllm_hold", VllmHold)
# Set only with `swap_on_request`: swaps a chat request starts.
MODEL_SWAPPER: Final = web.AppKey("model_swapper", ModelSwapper)
AUDIO_IN_FLIGHT: Final = web.AppKey("audio_in_flight", AudioInFlight)
