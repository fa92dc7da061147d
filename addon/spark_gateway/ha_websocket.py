"""One authenticated connection to Home Assistant's WebSocket API (`<api>/websocket`).

Commands and subscriptions share the connection: `command` sends a message and reads until
its result, handing every subscription event read meanwhile to that subscription's handler;
`next_event` reads until the next subscription event. Reads are never concurrent: the
gateway uses a connection for one swap at a time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Final

import aiohttp

# No heartbeat of ours: Home Assistant pings every 55 s, answered while we read.
_WS_TIMEOUT: Final = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5)
_HANDSHAKE_S: Final = 10.0  # connect, auth_required, auth_ok

type EventHandler = Callable[[dict[str, Any]], None]


class HaConnectionLost(Exception):
    """The connection could not be opened, or closed under us (Home Assistant restarted, the
    Supervisor proxy dropped it, a network cut)."""


class HaTokenRefused(Exception):
    """Home Assistant refused the gateway's access token."""


class HaWebSocket:
    """An open, authenticated connection; see `connect`."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._last_id = 0
        self._subscriptions: dict[int, EventHandler] = {}

    async def command(
        self,
        message: dict[str, Any],
        *,
        timeout: float,  # noqa: ASYNC109
        on_event: EventHandler | None = None,
    ) -> dict[str, Any]:
        """Send `message` (its `id` added) and return Home Assistant's `result` message for
        it; TimeoutError past `timeout` s. With `on_event`, the message starts a subscription
        (`subscribe_entities`, `subscribe_events`, …): each of its events goes there, also
        those read later while waiting for another command."""
        self._last_id += 1
        ident = self._last_id
        if on_event is not None:
            self._subscriptions[ident] = on_event  # its first events may follow the result
        await self.send({**message, "id": ident})
        async with asyncio.timeout(timeout):
            while True:
                reply = await self._read()
                if reply.get("id") == ident and reply.get("type") == "result":
                    return reply

    async def next_event(self) -> None:
        """Read until one subscription event went to its handler."""
        while not self._dispatch(await self.receive()):
            pass

    async def _read(self) -> dict[str, Any]:
        """The next message that is not a subscription event (those go to their handlers)."""
        while True:
            message = await self.receive()
            if not self._dispatch(message):
                return message

    def _dispatch(self, message: dict[str, Any]) -> bool:
        ident = message.get("id")
        handler = self._subscriptions.get(ident) if isinstance(ident, int) else None
        if message.get("type") != "event" or handler is None:
            return False
        event = message.get("event")
        if isinstance(event, dict):
            handler(event)
        return True

    async def receive(self) -> dict[str, Any]:
        """The next message; HaConnectionLost when the connection closed."""
        try:
            message = await self._ws.receive()
        except aiohttp.ClientError as err:
            raise HaConnectionLost(f"the connection to Home Assistant failed: {err}") from err
        if message.type is not aiohttp.WSMsgType.TEXT:
            raise HaConnectionLost("Home Assistant closed the WebSocket connection")
        try:
            data = json.loads(message.data)
        except ValueError as err:
            raise HaConnectionLost("Home Assistant sent something other than JSON") from err
        if not isinstance(data, dict):
            raise HaConnectionLost("Home Assistant sent something other than a JSON object")
        return data

    async def send(self, message: dict[str, Any]) -> None:
        """Send one message; HaConnectionLost when the connection closed."""
        try:
            await self._ws.send_json(message)
        except (aiohttp.ClientError, ConnectionError) as err:
            raise HaConnectionLost(f"the connection to Home Assistant failed: {err}") from err


@asynccontextmanager
async def connect(
    session: aiohttp.ClientSession, api_url: str, token: str
) -> AsyncIterator[HaWebSocket]:
    """An authenticated connection to `<api_url>/websocket`, closed on leaving.

    HaConnectionLost when it cannot be opened, HaTokenRefused when the token is refused.
    """
    try:
        ws = await session.ws_connect(f"{api_url}/websocket", timeout=_WS_TIMEOUT)
    except (aiohttp.ClientError, TimeoutError) as err:
        raise HaConnectionLost(f"cannot reach Home Assistant's WebSocket API: {err}") from err
    async with ws:
        connection = HaWebSocket(ws)
        try:
            async with asyncio.timeout(_HANDSHAKE_S):
                await connection.receive()  # auth_required
                await connection.send({"type": "auth", "access_token": token})
                auth = await connection.receive()
        except TimeoutError as err:
            raise HaConnectionLost("Home Assistant did not finish the WebSocket handshake") from err
        if auth.get("type") != "auth_ok":
            raise HaTokenRefused("Home Assistant refused the gateway's token")
        yield connection
