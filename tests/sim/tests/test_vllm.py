"""The vLLM fake over real HTTP: models, metrics, JSON and SSE generation, disconnects, errors."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.sim import SimCluster, SimConfig

MODEL = "RedHatAI/Qwen3.6-35B-A3B-NVFP4"


@pytest.fixture
def sim_config(client_key_pair: tuple[str, str]) -> SimConfig:
    # A slow token rate makes the pacing and the disconnect observable without long waits.
    return SimConfig(authorized_keys=[client_key_pair[1]], load_seconds=0.3, token_rate=50.0)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def metric_values(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """Sample name -> value for every sample labelled with the served model."""
    async with http.get(f"{url}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("model_name") == MODEL and "le" not in sample.labels:
                if "finished_reason" in sample.labels:
                    values[f"{sample.name}:{sample.labels['finished_reason']}"] = sample.value
                else:
                    values[sample.name] = sample.value
    return values


async def test_models_card_and_health(sim: SimCluster, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{sim.vllm.url}/health") as response:
        assert response.status == 200
    async with http.get(f"{sim.vllm.url}/v1/models") as response:
        body = await response.json()
    (card,) = body["data"]
    assert body["object"] == "list"
    assert card["id"] == MODEL
    assert card["owned_by"] == "vllm"
    assert card["max_model_len"] == sim.config.max_model_len
    assert card["root"] == MODEL


async def test_metrics_parse_and_move_with_traffic(
    sim: SimCluster, http: aiohttp.ClientSession
) -> None:
    before = await metric_values(http, sim.vllm.url)
    assert before["vllm:num_requests_running"] == 0
    assert before["vllm:generation_tokens_total"] == 0
    payload = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    async with http.post(f"{sim.vllm.url}/v1/chat/completions", json=payload) as response:
        assert response.status == 200
        usage = (await response.json())["usage"]
    after = await metric_values(http, sim.vllm.url)
    assert after["vllm:generation_tokens_total"] == 5
    assert after["vllm:prompt_tokens_total"] == usage["prompt_tokens"]
    assert after["vllm:request_success_total:length"] == 1
    async with http.get(f"{sim.vllm.url}/metrics") as response:
        families = {f.name: f for f in text_string_to_metric_families(await response.text())}
    ttft = families["vllm:time_to_first_token_seconds"]
    assert ttft.type == "histogram"
    count = next(s for s in ttft.samples if s.name.endswith("_count"))
    assert count.value == 1
    assert count.labels == {"model_name": MODEL, "engine": "0"}
    assert "vllm:kv_cache_usage_perc" in families
    assert "vllm:num_requests_waiting" in families


async def test_running_and_kv_gauges_during_generation(
    sim: SimCluster, http: aiohttp.ClientSession
) -> None:
    payload = {"model": MODEL, "prompt": "a long job", "max_tokens": 40, "stream": True}
    async with http.post(f"{sim.vllm.url}/v1/completions", json=payload) as response:
        await response.content.readline()  # generation under way
        during = await metric_values(http, sim.vllm.url)
        await response.read()
    assert during["vllm:num_requests_running"] == 1
    assert during["vllm:kv_cache_usage_perc"] > 0
    after = await metric_values(http, sim.vllm.url)
    assert after["vllm:num_requests_running"] == 0
    assert after["vllm:kv_cache_usage_perc"] == 0


async def test_chat_json_is_deterministic(sim: SimCluster, http: aiohttp.ClientSession) -> None:
    payload = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Turn on the lights"}],
        "max_tokens": 8,
    }
    texts = []
    for _ in range(2):
        async with http.post(f"{sim.vllm.url}/v1/chat/completions", json=payload) as response:
            body = await response.json()
        texts.append(body["choices"][0]["message"]["content"])
        assert body["object"] == "chat.completion"
        assert body["choices"][0]["finish_reason"] == "length"
        assert body["usage"]["completion_tokens"] == 8
    assert texts[0] == texts[1]
    assert texts[0].startswith("You said: Turn on the lights")


async def test_chat_stream_paced_at_token_rate(
    sim: SimCluster, http: aiohttp.ClientSession
) -> None:
    tokens = 20
    payload = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "count"}],
        "max_tokens": tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.monotonic()
    events: list[str] = []
    async with http.post(f"{sim.vllm.url}/v1/chat/completions", json=payload) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        async for raw in response.content:
            line = raw.decode().strip()
            if line:
                assert line.startswith("data: ")
                events.append(line.removeprefix("data: "))
    elapsed = time.monotonic() - started
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    content = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert len([piece for piece in content if piece]) == tokens
    assert chunks[-1]["usage"]["completion_tokens"] == tokens
    # Paced, not dumped: 20 tokens at 50 tokens/s cannot arrive sooner than 0.4 s.
    assert elapsed >= tokens / sim.config.token_rate * 0.95


async def test_client_disconnect_stops_generation(
    sim: SimCluster, http: aiohttp.ClientSession
) -> None:
    payload = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "write a novel"}],
        "max_tokens": 5000,
        "stream": True,
    }
    response = await http.post(f"{sim.vllm.url}/v1/chat/completions", json=payload)
    for _ in range(4):
        await response.content.readline()
    response.close()  # drop the connection mid-stream
    await sim.vllm.container.wait_until(lambda _: sim.vllm.active_requests == 0)
    first = await metric_values(http, sim.vllm.url)
    await asyncio.sleep(0.2)  # no token may come after the abort: 0.2 s is 40 at this rate
    second = await metric_values(http, sim.vllm.url)
    assert second["vllm:num_requests_running"] == 0
    assert second["vllm:generation_tokens_total"] == first["vllm:generation_tokens_total"]
    assert first["vllm:generation_tokens_total"] < 100
    assert second["vllm:request_success_total:abort"] == 1


async def test_openai_sdk_streams_and_completes(sim: SimCluster) -> None:
    async with openai.AsyncOpenAI(base_url=f"{sim.vllm.url}/v1", api_key="unused") as client:
        models = await client.models.list()
        assert [model.id for model in models.data] == [MODEL]
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hello"}],
            max_tokens=6,
            stream=True,
        )
        pieces = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
        assert "".join(pieces).startswith("You said: hello")
        completion = await client.completions.create(model=MODEL, prompt="abc", max_tokens=3)
        assert completion.choices[0].text.startswith("You said:")
        vectors = await client.embeddings.create(model=MODEL, input=["a", "a", "b"])
        assert vectors.data[0].embedding == vectors.data[1].embedding
        assert vectors.data[0].embedding != vectors.data[2].embedding
        with pytest.raises(openai.NotFoundError, match="does not exist"):
            await client.chat.completions.create(
                model="other/model", messages=[{"role": "user", "content": "x"}]
            )


async def test_bad_requests_get_json_errors(sim: SimCluster, http: aiohttp.ClientSession) -> None:
    url = f"{sim.vllm.url}/v1/chat/completions"
    async with http.post(url, data=b"{not json", headers={"Content-Type": "application/json"}) as r:
        assert r.status == 400
        assert (await r.json())["error"]["type"] == "BadRequestError"
    async with http.post(url, json={"model": MODEL, "messages": []}) as r:
        assert r.status == 400
    too_long = {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "max_tokens": 10**6}
    async with http.post(url, json=too_long) as r:
        assert r.status == 400
        assert "maximum context length" in (await r.json())["error"]["message"]
    embeddings = f"{sim.vllm.url}/v1/embeddings"
    async with http.post(embeddings, json={"model": MODEL, "input": [1, 2]}) as r:
        assert r.status == 400
        assert (await r.json())["error"]["param"] == "input"
    async with http.post(f"{sim.vllm.url}/v1/completions", json={"model": MODEL}) as r:
        assert r.status == 400
        assert (await r.json())["error"]["param"] == "prompt"
    unknown = {"model": "x/y", "messages": [{"role": "user", "content": "x"}]}
    async with http.post(url, json=unknown) as r:
        assert r.status == 404
        assert (await r.json())["error"] == {
            "message": "The model `x/y` does not exist.",
            "type": "NotFoundError",
            "param": "model",
            "code": 404,
        }


async def test_stream_options_without_stream_is_400_like_vllm(sim: SimCluster) -> None:
    """vLLM's request models refuse (truthy) stream_options unless stream is true, on chat and
    completions alike; an empty object passes, as there."""
    refusal = {
        "message": "Stream options can only be defined when `stream=True`.",
        "type": "BadRequestError",
        "param": "stream_options",
        "code": 400,
    }
    async with openai.AsyncOpenAI(
        base_url=f"{sim.vllm.url}/v1", api_key="unused", max_retries=0
    ) as client:
        with pytest.raises(openai.BadRequestError) as chat:
            await client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": "hi"}],
                stream=False,
                stream_options={"include_usage": True},
            )
        with pytest.raises(openai.BadRequestError) as completion:
            await client.completions.create(
                model=MODEL, prompt="abc", stream_options={"include_usage": True}
            )
        accepted = await client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=3,
            extra_body={"stream_options": {}},
        )
    assert chat.value.body == completion.value.body == refusal
    assert accepted.choices[0].message.content
