"""A request aiohttp cannot parse costs the add-on's log one line: no traceback, no header text."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.gateway.gateway_process import GatewayProcess

SECRET_START = "sk-leak-"


async def test_an_unparsable_request_is_one_warning_line(tmp_path: Path) -> None:
    async with GatewayProcess(tmp_path, "sk-test-key") as gateway:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        try:
            # A header line over aiohttp's 8,190 bytes, starting like a key.
            big = (SECRET_START + "a" * 20_000).encode()
            writer.write(b"GET /v1/models HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + big)
            writer.write(b"\r\n\r\n")
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        finally:
            writer.close()
        assert head.split(b" ")[1] == b"400", head  # aiohttp answers it itself, as HTTP/1.0
        async with asyncio.timeout(10):
            while not any("LineTooLong" in line for line in gateway.log):
                await asyncio.sleep(0.05)
        log = "".join(gateway.log)
        (line,) = [line for line in gateway.log if "LineTooLong" in line]
        assert " WARNING aiohttp.server: Error handling request from 127.0.0.1" in line, line
        assert "answered 400" in line, line
        assert "Traceback" not in log
        assert SECRET_START not in log
