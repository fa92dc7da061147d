"""Bytes aiohttp's parser refuses get the gateway's JSON error, from the gateway's own process.

Sent over a raw socket, because no HTTP client sends these: the answer must be a 400 in
OpenAI's error shape (not aiohttp's plain text quoting the bytes), the connection must end
cleanly after it, and the log must hold no traceback and none of what was sent.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.gateway.gateway_process import GatewayProcess

SECRET = b"sk-leak-0123456789"

MALFORMED = {
    "request line that is not HTTP": b"GARBAGE\r\n\r\n",
    "TLS hello on the HTTP port": b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
    "unknown HTTP version": b"GET /v1/models HTTP/9.9\r\nHost: gw\r\n\r\n",
    "header without a colon": (
        b"GET /v1/models HTTP/1.1\r\nHost: gw\r\nBearer " + SECRET + b"\r\n\r\n"
    ),
    "control byte in a header": (
        b"GET /v1/models HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + SECRET + b"\x01\r\n\r\n"
    ),
    "header line over 8 KiB": (
        b"GET /v1/models HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "
        + SECRET + b"a" * 20_000 + b"\r\n\r\n"
    ),
    "request line over 8 KiB": (
        b"GET /v1/" + SECRET + b"a" * 9_000 + b" HTTP/1.1\r\nHost: gw\r\n\r\n"
    ),
    "chunk size that is not hex": (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"zz\r\n{}\r\n0\r\n\r\n"
    ),
    "Content-Length with Transfer-Encoding": (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "HTTP/2 without an upgrade (prior knowledge)": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "Content-Length that is not a number": (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Length: " + SECRET + b"\r\n\r\n"
    ),
}  # fmt: skip


async def _exchange(port: int, sent: bytes) -> tuple[bytes, dict[str, str], bytes]:
    """Send raw bytes; the status line, headers and body of the answer, read until the
    gateway closes the connection (a timeout or a reset fails the test)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(sent)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=10)  # to EOF: closed by the gateway
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status_line.encode(), headers, body


async def test_unparsable_requests_get_a_json_400_and_a_closed_connection(tmp_path: Path) -> None:
    async with GatewayProcess(tmp_path, "sk-test-key") as gateway:
        for case, sent in MALFORMED.items():
            status_line, headers, body = await _exchange(gateway.port, sent)
            assert status_line.split(b" ")[1] == b"400", (case, status_line)
            assert headers["content-type"].startswith("application/json"), (case, headers)
            assert int(headers["content-length"]) == len(body), case
            error = json.loads(body)["error"]
            assert set(error) == {"message", "type", "param", "code"}, (case, error)
            assert error["type"] == "invalid_request_error", (case, error)
            assert error["code"] == "invalid_http", (case, error)
            assert error["param"] is None, (case, error)
            assert SECRET not in body, (case, body)  # the fault is named, the bytes are not
            if case.startswith("HTTP/2"):  # a client that can fall back needs the reason
                assert "HTTP/1.1" in error["message"], error
        # The gateway still serves after all of that.
        status_line, headers, body = await _exchange(
            gateway.port, b"GET /health HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"
        )
        assert status_line.split(b" ")[1] == b"200", status_line
    log = "".join(gateway.log)
    assert "Traceback" not in log
    assert SECRET.decode() not in log
    assert "ERROR" not in log
