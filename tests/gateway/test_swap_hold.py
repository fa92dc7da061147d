"""Chat requests held through a vLLM model swap and released when the new model serves."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import openai
import pytest
from openai import AsyncOpenAI

from spark_gateway.appkeys import VLLM_HOLD
from spark_gateway.chat_models import CURRENT
from tests.gateway.conftest import GatewayFactory, RunningGateway
from tests.sim import SimCluster, SimConfig

NEW_MODEL = "google/gemma-4-31b-it"


@pytest.fixture
async def swapping_sim() -> AsyncIterator[SimCluster]:
    """A simulator whose model load takes long enough to send requests into it."""
    async with SimCluster(SimConfig(token_rate=2000.0, load_seconds=1.0)) as cluster:
        yield cluster


async def ask(client: AsyncOpenAI, model: str) -> tuple[str, float]:
    reply = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hello"}], max_tokens=3
    )
    return reply.model, time.time()


async def test_requests_during_a_swap_are_held_and_released(
    start_gateway: GatewayFactory, swapping_sim: SimCluster
) -> None:
    sim = swapping_sim
    gateway = await start_gateway(vllm_url=sim.vllm.url, hold_timeout_s=20)
    async with AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=gateway.api_key, max_retries=0
    ) as client:
        container = sim.containers["vllm_node"]
        swap = asyncio.create_task(sim.serve_model(NEW_MODEL, stopped_s=0.5))
        await container.wait_until(lambda c: not c.running)  # stopped: connections refused
        early = [asyncio.create_task(ask(client, CURRENT)) for _ in range(3)]
        await wait_held(gateway, 3)
        await swap
        await sim.vllm.wait_serving()  # started and loading: vLLM answers 503
        assert sim.vllm.phase == "loading"
        late = [asyncio.create_task(ask(client, CURRENT)) for _ in range(3)]
        late.append(asyncio.create_task(ask(client, NEW_MODEL)))
        await wait_held(gateway, 7)
        answers = await asyncio.gather(*early, *late)
        ready_at = sim.vllm.loaded_at
        assert {model for model, _ in answers} == {NEW_MODEL}
        for _, answered_at in answers:
            assert answered_at >= ready_at
        # The old id is refused clearly once the new model serves.
        with pytest.raises(openai.NotFoundError) as info:
            await ask(client, sim.config.served_model)
        assert info.value.body["code"] == "model_not_loaded"  # type: ignore[index]


async def test_full_hold_refuses_at_once(
    start_gateway: GatewayFactory, swapping_sim: SimCluster
) -> None:
    sim = swapping_sim
    gateway = await start_gateway(vllm_url=sim.vllm.url, hold_max_requests=2, hold_timeout_s=20)
    async with AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=gateway.api_key, max_retries=0
    ) as client:
        await sim.serve_model(NEW_MODEL)
        held = [asyncio.create_task(ask(client, CURRENT)) for _ in range(2)]
        await wait_held(gateway, 2)
        with pytest.raises(openai.APIStatusError) as info:
            await ask(client, CURRENT)
        assert info.value.status_code == 503
        assert info.value.body["code"] == "hold_queue_full"  # type: ignore[index]
        assert info.value.response.headers["Retry-After"] == "10"
        assert {model for model, _ in await asyncio.gather(*held)} == {NEW_MODEL}


async def test_hold_times_out_with_retry_after(
    start_gateway: GatewayFactory, swapping_sim: SimCluster
) -> None:
    sim = swapping_sim
    gateway = await start_gateway(vllm_url=sim.vllm.url, hold_timeout_s=0.3)
    async with AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=gateway.api_key, max_retries=0
    ) as client:
        await sim.serve_model(NEW_MODEL)
        started = time.monotonic()
        with pytest.raises(openai.APIStatusError) as info:
            await ask(client, CURRENT)
        waited = time.monotonic() - started
        assert info.value.status_code == 503
        assert info.value.body["code"] == "vllm_not_ready"  # type: ignore[index]
        assert info.value.response.headers["Retry-After"] == "10"
        # The 503 (not the new model's answer) shows the hold ended at its deadline; no upper
        # bound on the wait, which a loaded machine would stretch.
        assert waited >= 0.3
        # Once the model serves, the next request goes through at once.
        await sim.vllm.wait_ready()
        assert (await ask(client, CURRENT))[0] == NEW_MODEL


async def wait_held(gateway: RunningGateway, count: int) -> None:
    async with asyncio.timeout(30):
        await gateway.app[VLLM_HOLD].until_held(count)


async def test_request_cut_by_the_swap_is_sent_again(start_gateway: GatewayFactory) -> None:
    """A non-streamed request vLLM drops when it stops is held and answered by the new model."""
    async with SimCluster(SimConfig(token_rate=20.0, load_seconds=0.5)) as sim:
        gateway = await start_gateway(vllm_url=sim.vllm.url, hold_timeout_s=20)
        async with AsyncOpenAI(
            base_url=f"{gateway.url}/v1", api_key=gateway.api_key, max_retries=0
        ) as client:
            slow = asyncio.create_task(
                client.chat.completions.create(
                    model=CURRENT, messages=[{"role": "user", "content": "hi"}], max_tokens=20
                )
            )
            await sim.vllm.container.wait_until(lambda _: sim.vllm.active_requests > 0)
            await sim.serve_model(NEW_MODEL)
            reply = await slow
        assert reply.model == NEW_MODEL
        assert reply.usage is not None
        assert reply.usage.completion_tokens == 20
