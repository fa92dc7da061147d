"""Models and the vLLM relay, driven by the official OpenAI SDK against the simulator."""

from __future__ import annotations

import asyncio

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI
from prometheus_client.parser import text_string_to_metric_families

from spark_gateway.appkeys import NOTIFIER
from spark_gateway.chat_models import CURRENT
from tests.gateway.conftest import FakeHomeAssistant, GatewayFactory, RunningGateway
from tests.sim import SimCluster, SimConfig


async def test_model_cards_pass_through(client: AsyncOpenAI, sim: SimCluster) -> None:
    models = await client.models.list()
    vllm_card = models.data[0].model_dump()
    assert vllm_card["id"] == sim.config.served_model
    assert vllm_card["max_model_len"] == sim.config.max_model_len  # vLLM's card passed on
    one = await client.models.retrieve(sim.config.served_model)  # id with a slash
    assert one.id == sim.config.served_model
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("no-such-model")


async def test_chat_non_streaming(client: AsyncOpenAI, sim: SimCluster) -> None:
    reply = await client.chat.completions.create(
        model=sim.config.served_model,
        messages=[{"role": "user", "content": "Tell me about the garden"}],
        max_tokens=12,
    )
    assert reply.choices[0].message.content
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 12


async def test_chat_streaming_matches_non_streaming(client: AsyncOpenAI, sim: SimCluster) -> None:
    messages = [{"role": "user", "content": "Describe the ocean"}]
    whole = await client.chat.completions.create(
        model=sim.config.served_model,
        messages=messages,
        max_tokens=20,  # type: ignore[arg-type]
    )
    stream = await client.chat.completions.create(
        model=sim.config.served_model,
        messages=messages,
        max_tokens=20,
        stream=True,  # type: ignore[arg-type]
    )
    pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert len(pieces) >= 20  # relayed chunk by chunk, not as one buffered blob
    assert "".join(pieces) == whole.choices[0].message.content


async def test_completions_and_embeddings(client: AsyncOpenAI, sim: SimCluster) -> None:
    completion = await client.completions.create(
        model=sim.config.served_model, prompt="Once upon a time", max_tokens=5
    )
    assert completion.choices[0].text
    streamed = await client.completions.create(
        model=sim.config.served_model, prompt="Once upon a time", max_tokens=5, stream=True
    )
    assert "".join([c.choices[0].text async for c in streamed]) == completion.choices[0].text
    embedding = await client.embeddings.create(model=sim.config.served_model, input="hello")
    assert len(embedding.data[0].embedding) > 8


async def test_upstream_errors_keep_status_and_body(
    gateway: RunningGateway, sim: SimCluster
) -> None:
    body = {"model": sim.config.served_model, "messages": "hi", "max_tokens": 0}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{sim.vllm.url}/v1/chat/completions", json=body) as direct:
            direct_status, direct_body = direct.status, await direct.read()
        async with session.post(
            f"{gateway.url}/v1/chat/completions", json=body, headers=gateway.headers()
        ) as relayed:
            assert relayed.status == direct_status == 400
            assert await relayed.read() == direct_body


async def test_vllm_refusing_stream_options_reaches_the_sdk_as_its_400(
    gateway: RunningGateway, sim: SimCluster
) -> None:
    """stream_options without stream=true: vLLM's 400 is relayed as it is, and the official
    SDK raises BadRequestError with vLLM's message and param."""
    async with AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=gateway.api_key, max_retries=0
    ) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            await client.chat.completions.create(
                model=sim.config.served_model,
                messages=[{"role": "user", "content": "hi"}],
                stream=False,
                stream_options={"include_usage": True},
            )
    assert refused.value.body == {
        "message": "Stream options can only be defined when `stream=True`.",
        "type": "BadRequestError",
        "param": "stream_options",
        "code": 400,
    }
    # vLLM's numeric code (OpenAI sends a string or null) does not trouble the SDK: the
    # exception comes from the status, message and param from the body.
    assert refused.value.param == "stream_options"


async def test_invalid_json_is_400(gateway: RunningGateway) -> None:
    async with aiohttp.ClientSession(headers=gateway.headers()) as session:
        for data in (b"{not json", b"[1, 2]"):
            async with session.post(f"{gateway.url}/v1/chat/completions", data=data) as resp:
                assert resp.status == 400
                assert (await resp.json())["error"]["code"] == "invalid_json"


async def test_a_model_that_is_not_a_string_is_400(gateway: RunningGateway) -> None:
    """OpenAI's invalid_type, before anything reaches vLLM (which would answer 404)."""
    async with aiohttp.ClientSession(headers=gateway.headers()) as session:
        for model in (5, None, ["current"], {"id": "current"}):
            payload = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
            async with session.post(f"{gateway.url}/v1/chat/completions", json=payload) as resp:
                assert resp.status == 400
                error = (await resp.json())["error"]
                assert (error["code"], error["param"]) == ("invalid_type", "model")


async def test_vllm_down_is_503_json(start_gateway: GatewayFactory, sim: SimCluster) -> None:
    """vLLM refusing connections: held for hold_timeout_s, then 503 with Retry-After."""
    gateway = await start_gateway(
        vllm_url=sim.vllm.url, parakeet_url=sim.parakeet.url, hold_timeout_s=0.3
    )
    await sim.faults.refuse("vllm")
    async with AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=gateway.api_key, max_retries=0
    ) as client:
        with pytest.raises(openai.APIStatusError) as info:
            await client.chat.completions.create(
                model=sim.config.served_model, messages=[{"role": "user", "content": "hi"}]
            )
        assert info.value.status_code == 503
        assert info.value.body["code"] == "vllm_not_ready"  # type: ignore[index]
        assert info.value.response.headers["Retry-After"] == "10"
        # Listing still works while vLLM is down: `current` only, which is held through a swap.
        assert [m.id for m in (await client.models.list()).data] == [CURRENT]


async def test_vllm_down_without_holding_is_503_at_once(
    start_gateway: GatewayFactory, sim: SimCluster
) -> None:
    gateway = await start_gateway(vllm_url=sim.vllm.url, hold_max_requests=0)
    await sim.faults.refuse("vllm")
    async with AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=gateway.api_key, max_retries=0
    ) as client:
        with pytest.raises(openai.APIStatusError) as info:
            await client.chat.completions.create(
                model=sim.config.served_model, messages=[{"role": "user", "content": "hi"}]
            )
    assert info.value.status_code == 503
    assert info.value.body["code"] == "upstream_unavailable"  # type: ignore[index]


async def _sim_metric(sim: SimCluster, name: str, **labels: str) -> float:
    async with aiohttp.ClientSession() as session, session.get(f"{sim.vllm.url}/metrics") as resp:
        text = await resp.text()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


async def test_client_disconnect_stops_generation(start_gateway: GatewayFactory) -> None:
    async with SimCluster(SimConfig(token_rate=20.0, load_seconds=0.1)) as slow:
        gateway = await start_gateway(vllm_url=slow.vllm.url)
        model = slow.config.served_model
        async with AsyncOpenAI(
            base_url=f"{gateway.url}/v1", api_key=gateway.api_key, max_retries=0
        ) as client:
            stream = await client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": "a long story"}],
                max_tokens=400,
                stream=True,
            )
            received = 0
            async for _ in stream:
                received += 1
                if received == 3:
                    break
            await stream.close()
        # vLLM sees the disconnect and aborts: no 20 s of generation for nobody (then the
        # wait below would time out).
        await slow.vllm.container.wait_until(lambda _: slow.vllm.active_requests == 0)
        assert await _sim_metric(slow, "vllm:request_success_total", finished_reason="abort") == 1
        assert await _sim_metric(slow, "vllm:num_requests_running") == 0
        assert await _sim_metric(slow, "vllm:generation_tokens_total") < 100


async def test_stream_is_relayed_as_it_is_generated(start_gateway: GatewayFactory) -> None:
    """Chunks reach the client while vLLM is still generating: nothing is held back."""
    async with SimCluster(SimConfig(token_rate=20.0, load_seconds=0.1)) as paced:
        gateway = await start_gateway(vllm_url=paced.vllm.url)
        async with AsyncOpenAI(
            base_url=f"{gateway.url}/v1", api_key=gateway.api_key, max_retries=0
        ) as client:
            stream = await client.chat.completions.create(
                model=paced.config.served_model,
                messages=[{"role": "user", "content": "count slowly"}],
                max_tokens=12,
                stream=True,
            )
            loop = asyncio.get_running_loop()
            arrivals = [loop.time() async for chunk in stream if chunk.choices]
    # 12 tokens at 20/s take about 0.6 s; relayed live, their arrivals span most of that.
    assert len(arrivals) >= 12
    assert arrivals[-1] - arrivals[0] > 0.3


async def test_wedged_vllm_is_503_with_a_wedge_report(
    gateway: RunningGateway, sim: SimCluster, fake_ha: FakeHomeAssistant
) -> None:
    """vLLM's engine dead behind a healthy /health (completions answer 500): the chat client
    gets 503 + Retry-After at once, as transcriptions do, and HA gets a wedge report."""
    sim.faults.wedge("vllm")
    async with AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=gateway.api_key, max_retries=0
    ) as client:
        with pytest.raises(openai.APIStatusError) as info:
            await client.chat.completions.create(
                model=sim.config.served_model, messages=[{"role": "user", "content": "hi"}]
            )
    assert info.value.status_code == 503
    assert info.value.body["code"] == "upstream_wedged"  # type: ignore[index]
    assert int(info.value.response.headers["Retry-After"]) > 0
    await gateway.app[NOTIFIER].drain()
    event_type, data = fake_ha.events[-1]
    assert event_type == "spark_control_wedge_report"
    assert data["service"] == "vllm"
    assert data["source"] == "gateway"
    assert "HTTP 500" in data["error"]
