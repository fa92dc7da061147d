"""Model and voice listings in the shapes OpenAI clients and Open WebUI read."""

from __future__ import annotations

import time
from typing import Any, Final

from aiohttp import web

from ..appkeys import CHAT_MODELS, CONFIG, UPSTREAM, VOICES
from ..chat_models import CURRENT, LISTING_MAX_AGE_S, ChatModels, alias_cards, catalog_cards
from ..errors import ApiError, UpstreamError
from ..openapi import GUARDED, add_route, errors, json_result

_STARTED = int(time.time())


def _card(model_id: str, owner: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": _STARTED, "owned_by": owner}


def audio_model_cards(request: web.Request) -> list[dict[str, Any]]:
    """The STT and TTS models (with their OpenAI-style aliases) this gateway serves."""
    config = request.app[CONFIG]
    cards: list[dict[str, Any]] = []
    if config.parakeet_url:
        cards += [_card(m, "nvidia") for m in (config.stt_model, *config.stt_model_aliases)]
    if config.magpie_url:
        cards += [_card(m, "nvidia") for m in (config.tts_model, *config.tts_model_aliases)]
    return cards


async def _chat_cards(request: web.Request) -> list[dict[str, Any]]:
    """vLLM's cards (as vLLM sends them) and the `current` alias, then (with `swap_on_request`)
    the catalog's other models a request can swap to; while vLLM is down, `_cards_while_down`."""
    config = request.app[CONFIG]
    if not config.vllm_url:
        return []
    models = request.app[CHAT_MODELS]
    try:
        cards = await models.cards(max_age_s=LISTING_MAX_AGE_S)
    except UpstreamError:
        return await _cards_while_down(models, swap_on_request=config.swap_on_request)
    listed = alias_cards(cards, models.aliases())
    loaded = models.select.catalog.get(models.catalog_key or "") if models.select else None
    if loaded is not None:  # the picker shows the display name, as for the other catalog models
        listed = [{**c, "name": loaded.name} if c["id"] == loaded.key else c for c in listed]
    if config.swap_on_request:
        listed += catalog_cards(models.other_catalog_models(), _STARTED)
    return listed


async def _cards_while_down(models: ChatModels, *, swap_on_request: bool) -> list[dict[str, Any]]:
    """While vLLM loads, restarts or is stopped: `current`, which a request is held on through a
    swap or restart (or told that vLLM is stopped), and with `swap_on_request` every catalog
    model, since a request naming one starts it. Open WebUI sends a chat only for a model its
    last listing held: an empty one, read during a swap, made it refuse its own chats."""
    current = {"id": CURRENT, "object": "model", "created": _STARTED, "owned_by": "vllm"}
    select = await models.model_select(max_age_s=LISTING_MAX_AGE_S) if swap_on_request else None
    if select is None:
        return [current]
    last = select.catalog.get(select.last_served_key or "")
    if last is not None:
        current["root"] = last.repo_id
    return [current, *catalog_cards(list(select.catalog.values()), _STARTED)]


async def list_models(request: web.Request) -> web.Response:
    """The chat models; the speech models too when `list_speech_models` is set."""
    cards = await _chat_cards(request)
    if request.app[CONFIG].list_speech_models:
        cards += audio_model_cards(request)
    return web.json_response({"object": "list", "data": cards})


async def get_model(request: web.Request) -> web.Response:
    """One model card by id, chat or speech (ids such as `RedHatAI/Qwen...` contain slashes)."""
    model_id = request.match_info["model"]
    for card in await _chat_cards(request) + audio_model_cards(request):
        if card.get("id") == model_id:
            return web.json_response(card)
    raise ApiError(404, f"model {model_id!r} not found", code="model_not_found", param="model")


async def audio_models(request: web.Request) -> web.Response:
    """Open WebUI's TTS/STT model dropdown: `{"models": [{"id"}]}`."""
    return web.json_response({"models": [{"id": c["id"]} for c in audio_model_cards(request)]})


async def audio_voices(request: web.Request) -> web.Response:
    """Open WebUI's voice dropdown: `{"voices": [{"id", "name"}]}`: Magpie voices, then aliases."""
    catalog = request.app[VOICES]
    try:
        names = await catalog.magpie_voices(request.app[UPSTREAM])
    except UpstreamError:
        names = []  # Magpie down: the aliases still tell apps what they may ask for
    voices = [{"id": n, "name": n.split(".", 1)[-1]} for n in names]
    voices += [
        {"id": alias, "name": f"{alias} ({target})"} for alias, target in catalog.aliases().items()
    ]
    return web.json_response({"voices": voices})


_MODEL_CARD: Final = {
    "type": "object",
    "required": ["id", "object"],
    "properties": {
        "id": {"type": "string"},
        "object": {"type": "string"},
        "created": {"type": "integer"},
        "owned_by": {"type": "string"},
        "name": {"type": "string"},
        "root": {"type": "string"},
    },
}


def setup(app: web.Application) -> None:
    """Register the listing routes, each with its OpenAPI operation."""
    add_route(
        app,
        "GET",
        "/v1/models",
        list_models,
        {
            "summary": "The chat models (vLLM's, the `current` alias, with swap_on_request the "
            "catalog's other models); no key needed",
            "security": [],
            "responses": {
                "200": json_result(
                    {
                        "type": "object",
                        "required": ["object", "data"],
                        "properties": {"data": {"type": "array", "items": _MODEL_CARD}},
                    }
                ),
                **errors(*GUARDED),
            },
        },
    )
    add_route(
        app,
        "GET",
        "/v1/models/{model:.+}",
        get_model,
        {
            "summary": "One model card",
            "parameters": [
                {"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {"200": json_result(_MODEL_CARD), **errors(404, *GUARDED)},
        },
    )
    add_route(
        app,
        "GET",
        "/v1/audio/models",
        audio_models,
        {
            "summary": "Speech models, in the shape Open WebUI reads; no key needed",
            "security": [],
            "responses": {
                "200": json_result({"type": "object", "required": ["models"]}),
                **errors(*GUARDED),
            },
        },
    )
    add_route(
        app,
        "GET",
        "/v1/audio/voices",
        audio_voices,
        {
            "summary": "Magpie voices and aliases, in the shape Open WebUI reads; no key needed",
            "security": [],
            "responses": {
                "200": json_result({"type": "object", "required": ["voices"]}),
                **errors(*GUARDED),
            },
        },
    )
