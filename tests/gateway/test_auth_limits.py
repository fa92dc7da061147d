"""API keys, body caps, content types, concurrency limit and CORS."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI

from spark_gateway.auth import KEY_FILE_NAME
from tests.gateway.conftest import GatewayFactory, RunningGateway
from tests.sim import SimCluster, SimConfig


async def status_of(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
        return resp.status, dict(resp.headers)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-key-123"},
        {"Authorization": "Basic c2stdGVzdA=="},
        {"Authorization": "Bearer "},
        {"x-api-key": "nope"},
    ],
)
async def test_missing_or_wrong_key_is_401(
    gateway: RunningGateway, headers: dict[str, str]
) -> None:
    for path in ("/v1/models/current", "/api/endpoints", "/v1/audio/speech"):
        status, answer = await status_of(f"{gateway.url}{path}", headers)
        assert status == 401, path
        assert answer["WWW-Authenticate"] == "Bearer"


async def test_valid_keys(gateway: RunningGateway) -> None:
    assert (await status_of(f"{gateway.url}/v1/models", gateway.headers()))[0] == 200
    assert (await status_of(f"{gateway.url}/v1/models", {"x-api-key": gateway.api_key}))[0] == 200
    # Open endpoints for probes and scrapers.
    for path in ("/health", "/metrics", "/openapi.json"):
        assert (await status_of(f"{gateway.url}{path}"))[0] == 200


async def test_sdk_with_wrong_key(gateway: RunningGateway) -> None:
    async with AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key="wrong", max_retries=0) as c:
        with pytest.raises(openai.AuthenticationError) as info:
            await c.models.list()
    assert info.value.body["code"] == "invalid_api_key"  # type: ignore[index]


async def test_generated_key_persists(start_gateway: GatewayFactory, tmp_path: Path) -> None:
    data = tmp_path / "addon-data"
    first = await start_gateway(api_keys=(), data_dir=data)
    key = (data / KEY_FILE_NAME).read_text().strip()
    assert key.startswith("sk-spark-")
    assert len(key) > 40
    assert (data / KEY_FILE_NAME).stat().st_mode & 0o777 == 0o600
    auth = {"Authorization": f"Bearer {key}"}
    assert (await status_of(f"{first.url}/v1/models", auth))[0] == 200
    second = await start_gateway(api_keys=(), data_dir=data)  # a restart keeps the key
    assert (await status_of(f"{second.url}/v1/models", auth))[0] == 200


async def test_auth_can_be_disabled(start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway(api_keys=(), auth_required=False)
    assert (await status_of(f"{gateway.url}/v1/models"))[0] == 200


async def test_upload_cap_is_413(sim: SimCluster, start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway(parakeet_url=sim.parakeet.url, max_upload_bytes=50_000)
    form = aiohttp.FormData()
    form.add_field("file", b"\0" * 100_000, filename="big.wav")
    status, body = await gateway.post("/v1/audio/transcriptions", data=form)
    assert status == 413
    assert body["error"]["code"] == "request_too_large"


async def test_upload_declared_over_the_cap_is_413_before_the_body(
    start_gateway: GatewayFactory,
) -> None:
    """A client announcing 300 MB against a 50 kB cap gets its 413 at once, without the gateway
    waiting for (or reading) a body it would refuse anyway."""
    gateway = await start_gateway(max_upload_bytes=50_000)
    host, port = gateway.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: gateway\r\n"
            + f"Authorization: Bearer {gateway.api_key}\r\n".encode()
            + b"Content-Type: multipart/form-data; boundary=B\r\n"
            b"Content-Length: 300000000\r\n\r\n--B\r\n"
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        assert head.startswith(b"HTTP/1.1 413 "), head
        headers = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:] if b": " in line)
        body = json.loads(await reader.readexactly(int(headers[b"Content-Length"])))
        assert body["error"]["code"] == "request_too_large"
    finally:
        writer.close()


async def test_json_cap_is_413(gateway: RunningGateway, sim: SimCluster) -> None:
    huge = {
        "model": sim.config.served_model,
        "messages": [{"role": "user", "content": "x" * 2_000_000}],
    }
    status, body = await gateway.post("/v1/chat/completions", json=huge)
    assert status == 413
    assert body["error"]["type"] == "invalid_request_error"


async def test_chunked_json_over_the_cap_is_413(start_gateway: GatewayFactory) -> None:
    """No Content-Length to check up front: the bytes read are counted instead."""
    gateway = await start_gateway(max_json_bytes=1000)

    async def body() -> AsyncIterator[bytes]:
        yield b'{"input": "'
        yield b"x" * 5000
        yield b'", "voice": "alloy"}'

    for path in ("/v1/audio/speech", "/v1/chat/completions", "/api/health-event"):
        status, answer = await gateway.post(
            path, data=body(), headers={"Content-Type": "application/json"}
        )
        assert status == 413, path
        assert answer["error"]["code"] == "request_too_large"


async def test_unknown_route_and_wrong_method_are_openai_errors_with_codes(
    gateway: RunningGateway,
) -> None:
    """The official SDK gets an OpenAI-shaped error with a code it can branch on, not null;
    the 405 keeps the Allow header naming what the route does take."""
    async with AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=gateway.api_key, max_retries=0
    ) as client:
        with pytest.raises(openai.NotFoundError) as missing:
            await client.get("/nothing-here", cast_to=object)
        with pytest.raises(openai.APIStatusError) as wrong_method:
            await client.post("/models", cast_to=object, body={})
    assert missing.value.body == {
        "message": "GET /v1/nothing-here is not a route of this gateway",
        "type": "not_found_error",
        "param": None,
        "code": "not_found",
    }
    assert wrong_method.value.status_code == 405
    assert wrong_method.value.body == {
        "message": "POST is not allowed on /v1/models (allowed: GET, HEAD)",
        "type": "invalid_request_error",
        "param": None,
        "code": "method_not_allowed",
    }
    assert wrong_method.value.response.headers["Allow"] == "GET,HEAD"


async def test_head_works_where_get_does(gateway: RunningGateway) -> None:
    """HEAD answers GET's status and headers without a body (probes and link checkers use it)."""
    async with aiohttp.ClientSession(headers=gateway.headers()) as session:
        for path in ("/v1/models", "/api/endpoints", "/health", "/openapi.json"):
            async with session.head(f"{gateway.url}{path}") as head:
                assert head.status == 200, path
                assert head.content_type == "application/json", path
                assert await head.read() == b"", path
        async with session.head(f"{gateway.url}/v1/nothing-here") as head:
            assert head.status == 404
        async with session.head(f"{gateway.url}/v1/chat/completions") as head:
            assert head.status == 405
            assert head.headers["Allow"] == "POST"


async def test_concurrency_limit_is_429(start_gateway: GatewayFactory) -> None:
    async with SimCluster(SimConfig(token_rate=20.0, load_seconds=0.1)) as slow:
        gateway = await start_gateway(vllm_url=slow.vllm.url, max_concurrent_requests=1)
        async with AsyncOpenAI(
            base_url=f"{gateway.url}/v1", api_key=gateway.api_key, max_retries=0
        ) as client:
            stream = await client.chat.completions.create(
                model=slow.config.served_model,
                max_tokens=20,
                stream=True,
                messages=[{"role": "user", "content": "hold the slot"}],
            )
            with pytest.raises(openai.RateLimitError) as info:
                await client.models.list()
            assert info.value.response.headers["Retry-After"] == "1"
            assert len([c async for c in stream]) > 1
            # The slot is free again once the stream ended.
            await gateway.finished.wait_for("POST", "/v1/chat/completions", 200)
            assert (await client.models.list()).data


async def test_cors_closed_by_default(gateway: RunningGateway) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.options(
            f"{gateway.url}/v1/models",
            headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"},
        ) as resp,
    ):
        assert "Access-Control-Allow-Origin" not in resp.headers


async def test_cors_allows_configured_origin(start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway(cors_origins=("http://webui.lan:3000",))
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization, Content-Type",
    }
    async with aiohttp.ClientSession() as session:
        async with session.options(
            f"{gateway.url}/v1/chat/completions",
            headers={"Origin": "http://webui.lan:3000", **preflight},
        ) as resp:
            assert resp.status == 200
            assert resp.headers["Access-Control-Allow-Origin"] == "http://webui.lan:3000"
        async with session.options(
            f"{gateway.url}/v1/chat/completions",
            headers={"Origin": "http://other.lan", **preflight},
        ) as resp:
            assert resp.status == 403
            assert "Access-Control-Allow-Origin" not in resp.headers
