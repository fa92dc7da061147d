"""Model and voice listings as Open WebUI fetches them, and the names chat requests may use."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI

from spark_gateway.auth import PUBLIC_LISTINGS
from spark_gateway.chat_models import CURRENT, LISTING_MAX_AGE_S
from spark_gateway.voices import VOICES_MAX_AGE_S
from tests.gateway.conftest import GatewayFactory, RunningGateway
from tests.sim import SimCluster
from tests.sim.cluster import MAGPIE_CONTAINER, PARAKEET_CONTAINER, VLLM_CONTAINER

# What Open WebUI's audio settings send (python `requests.get(url)`, no Authorization header).
OPEN_WEBUI_LISTING_HEADERS = {
    "User-Agent": "python-requests/2.32.4",
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate",
}


async def get_json(url: str, headers: dict[str, str]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_open_webui_audio_listings_without_a_key(
    gateway: RunningGateway, sim: SimCluster
) -> None:
    """GET {base}/audio/models and {base}/audio/voices as Open WebUI sends them: Magpie's voices."""
    status, models = await get_json(f"{gateway.url}/v1/audio/models", OPEN_WEBUI_LISTING_HEADERS)
    assert status == 200
    ids = [m["id"] for m in models["models"]]
    assert {"tts-1", "whisper-1", "nvidia/magpie-tts-multilingual"} <= set(ids)
    status, voices = await get_json(f"{gateway.url}/v1/audio/voices", OPEN_WEBUI_LISTING_HEADERS)
    assert status == 200
    voice_ids = [v["id"] for v in voices["voices"]]
    assert "Magpie-Multilingual.EN-US.Aria" in voice_ids  # from Magpie itself, not the aliases
    assert all(set(v) == {"id", "name"} for v in voices["voices"])
    # Open WebUI's fallback when /audio/models fails: {base}/models `data`.
    status, listing = await get_json(f"{gateway.url}/v1/models", OPEN_WEBUI_LISTING_HEADERS)
    assert status == 200
    assert sim.config.served_model in [m["id"] for m in listing["data"]]


class ManualClock:
    """A monotonic clock that moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def upstream_requests(sim: SimCluster) -> dict[str, list[str]]:
    """Every request the simulated services answered, per container, from their access logs."""
    return {
        name: [line for line in sim.containers[name].log_lines if ' HTTP/1.1" ' in line]
        for name in (VLLM_CONTAINER, PARAKEET_CONTAINER, MAGPIE_CONTAINER)
    }


async def test_keyless_listings_cost_one_upstream_call_per_ttl(
    start_gateway: GatewayFactory, sim: SimCluster
) -> None:
    """Bursts of keyless listings within the caches' age are one vLLM and one Magpie request;
    past the age, the next burst refreshes each once; `/v1/audio/models` asks nobody."""
    clock = ManualClock()
    gateway = await start_gateway(
        vllm_url=sim.vllm.url, parakeet_url=sim.parakeet.url, magpie_url=sim.magpie.url,
        clock=clock,
    )  # fmt: skip
    baseline = {name: len(lines) for name, lines in upstream_requests(sim).items()}

    def calls_since_start() -> dict[str, list[str]]:
        return {
            name: [line.split('"')[1] for line in lines[baseline[name] :]]
            for name, lines in upstream_requests(sim).items()
        }

    async with aiohttp.ClientSession() as session:

        async def burst(per_path: int = 10) -> None:
            async def one(path: str) -> None:
                async with session.get(
                    f"{gateway.url}{path}", headers=OPEN_WEBUI_LISTING_HEADERS
                ) as resp:
                    assert resp.status == 200, path
                    await resp.json()

            await asyncio.gather(*(one(path) for path in PUBLIC_LISTINGS for _ in range(per_path)))

        models, voices = "GET /v1/models HTTP/1.1", "GET /v1/audio/list_voices HTTP/1.1"
        await burst()
        for _ in range(3):
            await burst(per_path=1)  # one after another, as a polling client
        expected = {VLLM_CONTAINER: [models], PARAKEET_CONTAINER: [], MAGPIE_CONTAINER: [voices]}
        assert calls_since_start() == expected

        clock.now += LISTING_MAX_AGE_S * 0.9  # vLLM's cards still young enough
        await burst()
        assert calls_since_start() == expected

        clock.now += LISTING_MAX_AGE_S  # the cards are stale, the voices are not
        await burst()
        expected[VLLM_CONTAINER].append(models)
        assert calls_since_start() == expected

        clock.now += VOICES_MAX_AGE_S  # both stale: one refresh each
        await burst()
        await burst(per_path=1)
        expected[VLLM_CONTAINER].append(models)
        expected[MAGPIE_CONTAINER].append(voices)
        assert calls_since_start() == expected


async def test_only_the_listings_are_open(gateway: RunningGateway) -> None:
    """The keyless paths are exactly the documented ones; a wrong key sent is still refused."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{gateway.url}/openapi.json") as resp:
            document = await resp.json()
        for path, item in document["paths"].items():
            for method, operation in item.items():
                if not path.startswith(("/v1/", "/api/")):
                    continue
                documented_open = operation.get("security") == []
                assert documented_open == (method == "get" and path in PUBLIC_LISTINGS), path
        for path in PUBLIC_LISTINGS:
            async with session.get(f"{gateway.url}{path}") as resp:
                assert resp.status == 200, path
            async with session.get(
                f"{gateway.url}{path}", headers={"Authorization": "Bearer wrong-key-123"}
            ) as resp:
                assert resp.status == 401, path
        for path in ("/v1/models/current", "/api/endpoints"):
            async with session.get(f"{gateway.url}{path}") as resp:
                assert resp.status == 401, path
        async with session.post(f"{gateway.url}/v1/chat/completions", json={}) as resp:
            assert resp.status == 401


async def test_models_lists_chat_models_only(client: AsyncOpenAI, sim: SimCluster) -> None:
    ids = [m.id for m in (await client.models.list()).data]
    assert ids == [sim.config.served_model, CURRENT]
    current = (await client.models.retrieve(CURRENT)).model_dump()
    assert current["root"] == sim.config.served_model
    assert current["max_model_len"] == sim.config.max_model_len
    # Speech models are still known by id, just not offered as chat models.
    assert (await client.models.retrieve("whisper-1")).id == "whisper-1"


async def test_speech_models_listed_when_configured(
    start_gateway: GatewayFactory, sim: SimCluster
) -> None:
    gateway = await start_gateway(
        vllm_url=sim.vllm.url, parakeet_url=sim.parakeet.url, list_speech_models=True
    )
    async with AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=gateway.api_key, max_retries=0
    ) as client:
        ids = [m.id for m in (await client.models.list()).data]
    assert ids[:2] == [sim.config.served_model, CURRENT]
    assert {"whisper-1", "nvidia/parakeet-tdt-0.6b-v3"} <= set(ids)


async def test_current_alias_answers_with_the_real_model(
    client: AsyncOpenAI, sim: SimCluster
) -> None:
    reply = await client.chat.completions.create(
        model=CURRENT, messages=[{"role": "user", "content": "hello"}], max_tokens=4
    )
    assert reply.model == sim.config.served_model
    stream = await client.chat.completions.create(
        model=CURRENT, messages=[{"role": "user", "content": "hello"}], max_tokens=4, stream=True
    )
    assert {chunk.model async for chunk in stream} == {sim.config.served_model}


async def test_current_follows_a_swap(client: AsyncOpenAI, sim: SimCluster) -> None:
    """After a swap nobody saw, `current` names the new model (the stale id is relearned)."""
    await client.chat.completions.create(
        model=CURRENT, messages=[{"role": "user", "content": "warm"}], max_tokens=2
    )
    await sim.serve_model("google/gemma-4-31b-it")
    await sim.vllm.wait_ready()
    reply = await client.chat.completions.create(
        model=CURRENT, messages=[{"role": "user", "content": "hello"}], max_tokens=2
    )
    assert reply.model == "google/gemma-4-31b-it"


async def test_other_model_is_refused_clearly(client: AsyncOpenAI, sim: SimCluster) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        await client.chat.completions.create(
            model="gemma4", messages=[{"role": "user", "content": "hi"}]
        )
    error: dict[str, Any] = info.value.body  # type: ignore[assignment]
    assert error["code"] == "model_not_loaded"
    assert sim.config.served_model in error["message"]


async def test_open_webui_chat_requests(gateway: RunningGateway, sim: SimCluster) -> None:
    """Open WebUI's OpenAI connection: GET {base}/models with the key, then a streamed chat.

    It posts JSON with `Authorization: Bearer` and reads `data:` lines until `[DONE]`; its
    title and tag tasks post the same body without streaming.
    """
    headers = {**gateway.headers(), "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{gateway.url}/v1/models", headers=gateway.headers()) as resp:
            offered = [m["id"] for m in (await resp.json())["data"]]
        assert offered == [sim.config.served_model, CURRENT]
        body = {
            "model": CURRENT,
            "messages": [
                {"role": "system", "content": "You are helpful."},
                {"role": "user", "content": "Tell me about the garden"},
            ],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        async with session.post(
            f"{gateway.url}/v1/chat/completions", json=body, headers=headers
        ) as resp:
            assert resp.status == 200
            assert resp.content_type == "text/event-stream"
            lines = [line.decode().strip() async for line in resp.content]
        events = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        chunks = [json.loads(event) for event in events[:-1]]
        assert {chunk["model"] for chunk in chunks} == {sim.config.served_model}
        assert chunks[-1]["usage"]["completion_tokens"] > 0
        task = {**body, "stream": False}
        del task["stream_options"]
        async with session.post(
            f"{gateway.url}/v1/chat/completions", json=task, headers=headers
        ) as resp:
            answer = await resp.json()
        assert answer["model"] == sim.config.served_model
        assert answer["choices"][0]["message"]["content"]
