"""A request body must keep arriving: a client that trickles it gets 408 and frees its slot.

Without this, a body sent a few bytes at a time held its request slot (and its upstream's
budget, taken before the body is read) for as long as the client liked: two such uploads shut
out every speaker request, 64 every chat. The rule is Apache mod_reqtimeout's for bodies: the
body has `timeouts.body` seconds, plus one more second for every 500 bytes that arrive, so an
upload arriving at 500 bytes/s or faster is never cut, however large.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from .errors import ApiError

MIN_BYTES_PER_S: Final = 500
_CHECK_EVERY_S: Final = 1.0


class BodyTooSlow(TimeoutError):
    """Raised by every read of a body that missed its deadline.

    A TimeoutError, because aiohttp drains an unread body after the answer and ends that drain
    quietly (closing the connection) on a timeout, where any other error would be logged as
    unhandled.
    """


def body_deadline_middleware(grace_s: float) -> Middleware:
    """Fail the body's reads once it arrives slower than the rule allows, and answer 408."""

    @web.middleware
    async def body_deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.body_exists:
            return await handler(request)
        watch = asyncio.create_task(_watch_body(request, grace_s))
        response: web.StreamResponse | None = None
        try:
            response = await handler(request)
        except BodyTooSlow:
            pass
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        late = watch.result() if watch.done() and not watch.cancelled() else None
        if late is None:
            assert response is not None  # only BodyTooSlow is caught, and only the watch sets it
            return response
        # Whatever the handler made of a cut body, the client's fault is its slowness.
        if response is None or not response.prepared:
            response = ApiError(408, late, code="body_too_slow").to_response()
        response.force_close()  # the rest of the body is not waited for
        return response

    return body_deadline


async def _watch_body(request: web.Request, grace_s: float) -> str | None:
    """Until the whole body has arrived, compare what arrived with what the time allows;
    past the deadline, fail the body's reads and return the client's error message."""
    body = request.content
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not body.is_eof():
        now = loop.time()
        deadline = start + grace_s + body.total_bytes / MIN_BYTES_PER_S
        if now >= deadline:
            message = (
                f"the request body arrived too slowly ({body.total_bytes} bytes in "
                f"{now - start:.0f} s; at least {MIN_BYTES_PER_S} bytes/s are needed after "
                f"the first {grace_s:g} s)"
            )
            body.set_exception(BodyTooSlow(message))  # wakes a read waiting for more
            return message
        await asyncio.sleep(min(deadline - now, _CHECK_EVERY_S))
    return None
