"""Malformed multipart bodies get a 400 JSON error on every audio upload route, never a 500.

All three routes read uploads through `spark_gateway.uploads`; the bodies below are the ways
aiohttp's form parser fails (framing, part headers, a nameless part, an unknown charset).
"""

from __future__ import annotations

import aiohttp
import pytest

from tests.addon.conftest import GatewayFactory

ROUTES = (
    "/v1/audio/transcriptions",
    "/api/audio/transcribe-with-speakers",
    "/api/audio/diarize-chunk",
)
FILE_PART = b'Content-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
MALFORMED = {
    "not multipart at all": b"this is not multipart at all",
    "empty body": b"",
    "another boundary": b"--OTHER\r\n" + FILE_PART + b"RIFF\r\n--OTHER--\r\n",
    "cut off before the closing boundary": b"--XB\r\n" + FILE_PART + b"RIFF....",
    "broken part header": b"--XB\r\nthis is no header line\r\n\r\nRIFF\r\n--XB--\r\n",
    "part without a name": b"--XB\r\nContent-Type: audio/wav\r\n\r\nRIFF\r\n--XB--\r\n",
    "unknown charset": (
        b"--XB\r\n" + FILE_PART + b"RIFF\r\n--XB\r\n"
        b'Content-Disposition: form-data; name="language"\r\n'
        b"Content-Type: text/plain; charset=no-such-charset\r\n\r\nen\r\n--XB--\r\n"
    ),
}


@pytest.mark.parametrize("route", ROUTES)
async def test_malformed_multipart_is_400(start_gateway: GatewayFactory, route: str) -> None:
    gateway = await start_gateway()
    headers = {**gateway.headers(), "Content-Type": "multipart/form-data; boundary=XB"}
    async with aiohttp.ClientSession() as session:
        for name, body in MALFORMED.items():
            async with session.post(gateway.url + route, data=body, headers=headers) as resp:
                assert resp.status == 400, (name, await resp.text())
                assert resp.content_type == "application/json", name
                error = (await resp.json())["error"]
                assert error["code"] == "invalid_multipart", (name, error)
                assert error["message"].startswith("malformed multipart body: "), name


@pytest.mark.parametrize("route", ROUTES)
async def test_multipart_without_boundary_is_400(start_gateway: GatewayFactory, route: str) -> None:
    gateway = await start_gateway()
    headers = {**gateway.headers(), "Content-Type": "multipart/form-data"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(gateway.url + route, data=b"--XB\r\n", headers=headers) as resp,
    ):
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "invalid_multipart"
