"""Admission control: a cap on all requests in flight and a budget per upstream.

Past either, the gateway answers 429 with Retry-After at once instead of queueing. The budgets
are separate so one slow upstream never starves another: transcriptions held by a hung
Parakeet fill the STT budget, and chat still has its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from .config import ConcurrencyBudgets
from .errors import ApiError

_UNLIMITED_PATHS = frozenset({"/health", "/metrics"})

# Which budget each upstream-bound route draws from (by route pattern).
ROUTE_BUDGETS: Final[Mapping[str, str]] = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "chat",
    "/v1/embeddings": "chat",
    "/v1/audio/transcriptions": "stt",
    "/v1/audio/speech": "tts",
    "/api/audio/transcribe-with-speakers": "speakers",
    "/api/audio/diarize-chunk": "speakers",
    "/api/speakers": "speakers",  # enrolment: a clip decoded and fingerprinted by Parakeet
    "/api/speakers/identify": "speakers",
}


def concurrency_middleware(limit: int, budgets: ConcurrencyBudgets) -> Middleware:
    """Answer 429 with Retry-After instead of queueing unboundedly under overload."""
    in_flight = 0
    by_budget = dict.fromkeys(budgets.as_dict(), 0)
    limits = budgets.as_dict()

    @web.middleware
    async def limit_concurrency(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal in_flight
        if request.path in _UNLIMITED_PATHS:
            return await handler(request)
        if in_flight >= limit:
            raise _busy(f"too many requests in flight (limit {limit}); retry shortly")
        resource = request.match_info.route.resource
        budget = ROUTE_BUDGETS.get(resource.canonical) if resource is not None else None
        if budget is not None and by_budget[budget] >= limits[budget]:
            raise _busy(
                f"too many {budget} requests in flight (limit {limits[budget]}); retry shortly"
            )
        in_flight += 1
        if budget is not None:
            by_budget[budget] += 1
        try:
            return await handler(request)
        finally:
            in_flight -= 1
            if budget is not None:
                by_budget[budget] -= 1

    return limit_concurrency


def _busy(message: str) -> ApiError:
    return ApiError(429, message, code="too_many_requests", headers={"Retry-After": "1"})
