"""Requests aiohttp cannot parse get the gateway's JSON error, not aiohttp's plain text.

A malformed request line, a bad header, a broken chunk size, a line over 8 KiB: aiohttp's
parser refuses these before there is a request to route, so no middleware sees them. aiohttp
(3.13 and 3.14 alike) answers them in `RequestHandler.handle_error`, called on the connection's
handler with the parser's exception, and offers no public hook for it (aio-libs/aiohttp#3287 is
open). The narrowest override is therefore that one method, on a handler class of our own:
aiohttp's own `handle_error` still runs first (it logs the fault, which `server_log` turns into
one line, refuses when part of a response was sent, and closes the connection); only the body
it built is replaced. `tests/gateway/test_unparsable_requests.py` pins this on both aiohttp
versions the project runs.

The answer names the kind of fault, never the bytes: aiohttp's own text quotes the start of the
offending line, which may be a key.

The same handler closes a connection whose first request head (request line and headers) has
not arrived within `timeouts.body` seconds: aiohttp waits for it forever (its keep-alive
timeout only starts after a first answer), so clients that connect and send nothing, or a header
line now and then, could pile up until the gateway runs out of file descriptors.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import (
    BadHttpMessage,
    BadHttpMethod,
    BadStatusLine,
    InvalidHeader,
    LineTooLong,
)
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from .appkeys import CONFIG
from .errors import error_response

# Most specific first: LineTooLong and the others are BadHttpMessages.
_FAULTS: tuple[tuple[type[BaseException], str], ...] = (
    (LineTooLong, "a request line or header line is too long"),
    (BadHttpMethod, "not an HTTP request (HTTPS sent to the HTTP port?)"),
    (BadStatusLine, "malformed request line"),
    (InvalidHeader, "malformed header"),
)


def describe(fault: BaseException | None) -> str:
    """What was wrong with a request the parser refused, without quoting any of it."""
    for kind, text in _FAULTS:
        if isinstance(fault, kind):
            return text
    if type(fault) is BadHttpMessage:
        # llhttp's first line names the fault ("Invalid character in chunk size:"); the
        # lines after it quote the bytes.
        reason = fault.message.split("\n", 1)[0].strip().rstrip(":")
        if "PRI/Upgrade" in reason:  # llhttp's words for HTTP/2's connection preface
            return "HTTP/2 without an upgrade is not supported: send HTTP/1.1"
        return f"malformed request: {reason[:80]}" if reason else "malformed request"
    return "malformed request"


class JsonErrorRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering its own errors in the gateway's JSON shape and
    closing a connection whose first request head is late."""

    def __init__(self, *args: Any, head_timeout: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timeout = head_timeout
        self._head_late: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._head_timeout is not None:
            self._head_late = asyncio.get_running_loop().call_later(
                self._head_timeout, self.force_close
            )

    def request_started(self) -> None:
        """A request head arrived: from now on aiohttp's keep-alive timeout applies."""
        if self._head_late is not None:
            self._head_late.cancel()
            self._head_late = None

    def connection_lost(self, exc: BaseException | None) -> None:
        self.request_started()  # nothing left to time
        super().connection_lost(exc)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs, or raises if too late
        if status == 500:
            response = error_response(500, "internal gateway error", code="internal_error")
        elif status == 504:
            response = error_response(504, "timed out", code="timeout")
        else:
            response = error_response(status, describe(exc), code="invalid_http")
        response.force_close()
        return response


class JsonErrorServer(web.Server):
    """aiohttp's low-level server, making `JsonErrorRequestHandler`s for its connections."""

    def __init__(self, *args: Any, head_timeout: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timeout = head_timeout
        make_request = self.request_factory

        def request_factory(
            message: Any, payload: Any, protocol: Any, writer: Any, task: Any
        ) -> BaseRequest:
            # aiohttp makes the request object once the whole head has been parsed.
            if isinstance(protocol, JsonErrorRequestHandler):
                protocol.request_started()
            return make_request(message, payload, protocol, writer, task)

        self.request_factory = request_factory

    def __call__(self) -> RequestHandler:
        # The line of aiohttp's own __call__, with our class.
        return JsonErrorRequestHandler(
            self, loop=self._loop, head_timeout=self._head_timeout, **self._kwargs
        )


class GatewayRunner(web.AppRunner):
    """`web.AppRunner` whose server is a `JsonErrorServer` (the gateway's own, and tests')."""

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # starts the app, builds aiohttp's server for it
        return JsonErrorServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            head_timeout=self.app[CONFIG].timeouts.body,
            **plain._kwargs,
        )
