"""A Wyoming TCP server that can be stopped without leaving connections or tasks behind."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
from collections.abc import Callable, Iterable
from functools import partial
from typing import cast

from wyoming.error import Error
from wyoming.event import Event, write_event
from wyoming.server import AsyncEventHandler, AsyncTcpServer

_LOGGER = logging.getLogger(__name__)
# HA's voice pipeline gives up after 300 s; a connection silent that long is abandoned.
DEFAULT_IDLE_TIMEOUT = 300.0
# A home has a few satellites; each pipeline run holds one connection per bridge.
DEFAULT_MAX_CONNECTIONS = 10
# Caps checked on an event's header before its body is read: wyoming's own reader would
# allocate whatever `payload_length` says (2**32 bytes) and wait for it.
MAX_HEADER_BYTES = 64 * 1024
MAX_DATA_BYTES = 64 * 1024
MAX_PAYLOAD_BYTES = 1024 * 1024  # 32 s of 16 kHz mono; clients send chunks of ~64 ms

Connections = set[asyncio.Task[None]]
HandlerFactory = Callable[
    [Connections, asyncio.StreamReader, asyncio.StreamWriter], AsyncEventHandler
]


class TrackedEventHandler(AsyncEventHandler):
    """An event handler whose connection task is known to its server, so stop() can end it.

    It also ends connections that stay silent for `idle_timeout` seconds and answers a
    broken event framing with an `Error` before closing (wyoming's own loop has neither).
    """

    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS

    def __init__(
        self, connections: Connections, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        super().__init__(reader, writer)
        self._connections = connections

    async def run(self) -> None:
        """Read and handle events until the client leaves, idles out or a handler says stop."""
        task = asyncio.current_task()
        if len(self._connections) >= self.max_connections:
            await self._refuse(f"too many connections (limit {self.max_connections})", "busy")
            self.writer.close()
            return
        if task is not None:
            self._connections.add(task)
        try:
            while (event := await self._next_event()) is not None:
                if not await self.handle_event(event):
                    break
        except ConnectionError as err:
            _LOGGER.debug("Client went away: %r", err)
        except Exception:
            # Nobody awaits a connection task: log here, and drop only this connection.
            _LOGGER.exception("Unexpected error in a Wyoming connection")
        finally:
            await self.disconnect()
            # The client must see the connection end, whichever side ended it.
            self.writer.close()
            if task is not None:
                self._connections.discard(task)

    async def _next_event(self) -> Event | None:
        try:
            async with asyncio.timeout(self.idle_timeout):
                return await read_bounded_event(self.reader)
        except TimeoutError:
            _LOGGER.debug("Closing a connection idle for %s s", self.idle_timeout)
        except EventTooLarge as err:
            await self._refuse(str(err), "too-large")
        except (MalformedEvent, asyncio.IncompleteReadError) as err:
            # The framing is lost: nothing after it on this connection can be trusted.
            await self._refuse(f"malformed event framing: {err}"[:300], "malformed")
        except ConnectionError:
            pass
        return None

    async def _refuse(self, text: str, code: str) -> None:
        """Tell the client why the connection ends (if it still listens)."""
        _LOGGER.debug("Refusing a Wyoming client: %s", text)
        with contextlib.suppress(ConnectionError):
            await self.write_event(Error(text=text, code=code).event())

    async def write_events(self, events: Iterable[Event]) -> None:
        """Send several events with one socket write, so the client gets them together."""
        buffer = io.BytesIO()
        for event in events:
            write_event(event, buffer)
        self.writer.write(buffer.getvalue())
        await self.writer.drain()

    async def handle_event(self, event: Event) -> bool:  # pragma: no cover - abstract
        """Handle one event; subclasses implement it."""
        raise NotImplementedError


class MalformedEvent(ValueError):
    """Bytes that are not a Wyoming event header."""


class EventTooLarge(ValueError):
    """An event header declaring more bytes than the caps allow."""


async def read_bounded_event(reader: asyncio.StreamReader) -> Event | None:
    """One event, like wyoming's `async_read_event`, with every length checked before reading.

    None at the end of the stream; MalformedEvent or EventTooLarge otherwise.
    """
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as err:
        if not err.partial:
            return None
        raise MalformedEvent("the stream ended inside an event header") from err
    except asyncio.LimitOverrunError as err:
        raise EventTooLarge(f"event header over {MAX_HEADER_BYTES} bytes") from err
    try:
        header = json.loads(line)
    except (ValueError, RecursionError) as err:
        raise MalformedEvent("the header line is not JSON") from err
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise MalformedEvent("the header is not an object with a 'type'")
    data = header.get("data") or {}
    data_length = _length(header, "data_length", MAX_DATA_BYTES)
    payload_length = _length(header, "payload_length", MAX_PAYLOAD_BYTES)
    if data_length:
        try:
            extra = json.loads(await reader.readexactly(data_length))
        except (ValueError, RecursionError) as err:
            raise MalformedEvent("the event data is not JSON") from err
        if not isinstance(extra, dict) or not isinstance(data, dict):
            raise MalformedEvent("the event data is not an object")
        data = {**data, **extra}
    if not isinstance(data, dict):
        raise MalformedEvent("the event data is not an object")
    payload = await reader.readexactly(payload_length) if payload_length else None
    return Event(type=header["type"], data=data, payload=payload)


def _length(header: dict[str, object], key: str, cap: int) -> int:
    value = header.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedEvent(f"{key} is not a byte count")
    if value > cap:
        raise EventTooLarge(f"{key} of {value} bytes is over the {cap}-byte limit")
    return value


class WyomingBridgeServer:
    """Serve one Wyoming handler class on a TCP port."""

    def __init__(self, host: str, port: int, handler_factory: HandlerFactory) -> None:
        self.host = host
        self._requested_port = port
        self._factory = handler_factory
        self._connections: Connections = set()
        self._tcp: AsyncTcpServer | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one when port 0 was asked for)."""
        if self._tcp is None or self._tcp._server is None:
            return self._requested_port
        # wyoming keeps the asyncio server private; its sockets are the only source of the port.
        server = cast(asyncio.Server, self._tcp._server)
        sockname = server.sockets[0].getsockname()
        return int(sockname[1])

    @property
    def open_connections(self) -> int:
        """How many clients are connected right now."""
        return len(self._connections)

    @property
    def connection_tasks(self) -> list[asyncio.Task[None]]:
        """The tasks serving the connections open now; each ends once its connection is gone."""
        return list(self._connections)

    @property
    def uri(self) -> str:
        """`tcp://host:port` of this server."""
        return f"tcp://{self.host}:{self.port}"

    async def start(self) -> None:
        """Bind the port and start accepting connections (raises OSError if taken)."""
        self._tcp = AsyncTcpServer(self.host, self._requested_port)
        await self._tcp.start(partial(self._factory, self._connections))

    async def stop(self) -> None:
        """Stop listening, end every open connection and wait until they are gone."""
        if self._tcp is None:
            return
        tcp, self._tcp = self._tcp, None
        await tcp.stop()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if tcp._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await tcp._server.wait_closed()
