"""Admission control: at most N requests in flight, the rest get a 429 at once."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from .errors import ApiError

_UNLIMITED_PATHS = frozenset({"/health", "/metrics"})


def concurrency_middleware(limit: int) -> Middleware:
    """Answer 429 with Retry-After instead of queueing unboundedly under overload."""
    in_flight = 0

    @web.middleware
    async def limit_concurrency(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal in_flight
        if request.path in _UNLIMITED_PATHS:
            return await handler(request)
        if in_flight >= limit:
            raise ApiError(
                429,
                f"too many requests in flight (limit {limit}); retry shortly",
                code="too_many_requests",
                headers={"Retry-After": "1"},
            )
        in_flight += 1
        try:
            return await handler(request)
        finally:
            in_flight -= 1

    return limit_concurrency
