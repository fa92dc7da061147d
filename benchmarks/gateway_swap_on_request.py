"""Chat requests that make the gateway swap models (`swap_on_request`), against doing it by hand.

    .venv/bin/python benchmarks/gateway_swap_on_request.py [--swaps 4] [--starts 2] [--clients 8]
        [--load 1.0]

A real Home Assistant runs the integration against the in-process simulator and serves its REST
API on loopback; the gateway talks to it with a real access token. Each round, `--clients`
official `openai` SDK clients (no SDK retries) ask at once for the catalog model that is not
loaded (alternately `gemma4` and `qwen36`): the first request has Home Assistant swap, the others
join that swap. Targets: 0 failed requests, one swap per round, and every request answered
within 0.5 s of the moment vLLM became ready with the new model (the simulator's `loaded_at`).

Then `--starts` rounds start a stopped vLLM: vLLM is stopped in Home Assistant
(`spark_control.stop_service`), and the clients ask for the model it served; the first request
has Home Assistant launch it again (same targets, one launch per round).

Baseline in the same run: what a client does without the option: it calls
`spark_control.swap_model` (wait: true) on Home Assistant's REST API itself (also to start a
stopped vLLM), then sends the same requests straight to vLLM. Figures: time from ready to each
answer.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import openai
from aiohttp.test_utils import TestServer
from ha_harness import entry_data, home_assistant_with_cluster
from homeassistant.auth.const import GROUP_ID_ADMIN
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from openai import AsyncOpenAI

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "addon")]

from spark_gateway.app import create_app  # noqa: E402
from spark_gateway.config import GatewayConfig  # noqa: E402
from tests.sim import SimCluster, SimConfig, generate_client_key  # noqa: E402

KEY = "sk-bench-0123456789"
CATALOG = {"gemma4": "google/gemma-4-27b-it", "qwen36": "RedHatAI/Qwen3.6-35B-A3B-NVFP4"}
TARGET_RELEASE_S = 0.5
HI = [{"role": "user", "content": "hi"}]


@dataclass
class Tally:
    answered: int = 0
    failed: int = 0
    wrong_model: int = 0
    delays: list[float] = field(default_factory=list)  # s from ready to each answer
    errors: list[str] = field(default_factory=list)


async def ha_api(hass: HomeAssistant) -> tuple[TestServer, str, str]:
    """HA's REST API served on loopback, its URL and an administrator's access token."""
    for component in ("http", "api", "websocket_api"):
        assert await async_setup_component(hass, component, {})
    user = await hass.auth.async_create_user("bench", group_ids=[GROUP_ID_ADMIN])
    refresh = await hass.auth.async_create_refresh_token(user, "https://bench.example/")
    token = hass.auth.async_create_access_token(refresh)
    server = TestServer(hass.http.app, host="127.0.0.1")
    await server.start_server()
    return server, str(server.make_url("/api")), token


async def ask_all(
    client: AsyncOpenAI, model: str, expect: str, clients: int, tally: Tally
) -> list[float]:
    """`clients` requests at once; the wall time each was answered (failures counted)."""

    async def one() -> float | None:
        try:
            reply = await client.chat.completions.create(model=model, messages=HI, max_tokens=4)
        except (openai.APIStatusError, openai.APIConnectionError) as err:
            tally.failed += 1
            tally.errors.append(str(err))
            return None
        tally.answered += 1
        tally.wrong_model += reply.model != expect
        return time.time()

    return [t for t in await asyncio.gather(*(one() for _ in range(clients))) if t is not None]


async def through_gateway(
    sim: SimCluster, gateway_url: str, key: str, clients: int, tally: Tally
) -> None:
    async with AsyncOpenAI(base_url=gateway_url, api_key=KEY, max_retries=0) as client:
        done = await ask_all(client, key, CATALOG[key], clients, tally)
    tally.delays += [t - sim.vllm.loaded_at for t in done]


async def by_hand(
    sim: SimCluster,
    session: aiohttp.ClientSession,
    api: str,
    token: str,
    entry_id: str,
    key: str,
    clients: int,
    tally: Tally,
) -> None:
    # The client exists before the swap, as the gateway's clients do: its setup is not timed.
    async with AsyncOpenAI(base_url=f"{sim.vllm.url}/v1", api_key=KEY, max_retries=0) as client:
        async with session.post(
            f"{api}/services/spark_control/swap_model",
            json={"cluster": entry_id, "model": key, "wait": True},
            headers={"Authorization": f"Bearer {token}"},
        ) as resp:
            resp.raise_for_status()
        done = await ask_all(client, CATALOG[key], CATALOG[key], clients, tally)
    tally.delays += [t - sim.vllm.loaded_at for t in done]


async def stop_vllm(session: aiohttp.ClientSession, api: str, token: str, entry_id: str) -> None:
    """Stop vLLM as a user would in Home Assistant (the action behind its running switch)."""
    async with session.post(
        f"{api}/services/spark_control/stop_service",
        json={"cluster": entry_id, "service": "vllm"},
        headers={"Authorization": f"Bearer {token}"},
    ) as resp:
        resp.raise_for_status()


def report(name: str, tally: Tally) -> None:
    delays = sorted(tally.delays)
    figures = (
        f"ready->answer p50={statistics.median(delays) * 1000:6.1f} ms  "
        f"max={delays[-1] * 1000:6.1f} ms"
        if delays
        else "no answers"
    )
    print(
        f"{name:<44} answered={tally.answered:<4} failed={tally.failed:<3} "
        f"wrong model={tally.wrong_model:<3} {figures}"
    )


async def main(args: argparse.Namespace) -> int:
    private_key, public_key = generate_client_key("bench")
    config = SimConfig(
        nodes=1, authorized_keys=[public_key], load_seconds=args.load, token_rate=2000.0
    )
    gateway_tally, hand_tally = Tally(), Tally()
    start_tally, hand_start_tally = Tally(), Tally()
    async with SimCluster(config) as sim:
        with tempfile.TemporaryDirectory() as tmp:
            data = entry_data(sim.endpoints(), private_key, public_key)
            async with home_assistant_with_cluster(Path(tmp), data) as (hass, entry):
                ha_server, api, token = await ha_api(hass)
                gateway_config = GatewayConfig(
                    vllm_url=sim.vllm.url,
                    api_keys=(KEY,),
                    data_dir=Path(tmp) / "gateway",
                    ha_url=api,
                    ha_token=token,
                    swap_on_request=True,
                    hold_timeout_s=60,
                )
                gateway = TestServer(create_app(gateway_config), host="127.0.0.1")
                await gateway.start_server()
                try:
                    async with aiohttp.ClientSession() as session:

                        async def rounds(
                            hand_keys: list[str],
                            via_keys: list[str],
                            *,
                            stop: bool,
                            hand: Tally,
                            via: Tally,
                        ) -> int:
                            """The first keys by hand, then the others through the gateway
                            (vLLM stopped before each round when `stop`); the gateway's
                            launches."""
                            for key in hand_keys:
                                if stop:
                                    await stop_vllm(session, api, token, entry.entry_id)
                                await by_hand(
                                    sim, session, api, token, entry.entry_id, key, args.clients,
                                    hand,
                                )  # fmt: skip
                            before = sum("vllm serve" in c for c in sim.nodes[0].commands)
                            for key in via_keys:
                                if stop:
                                    await stop_vllm(session, api, token, entry.entry_id)
                                await through_gateway(
                                    sim, str(gateway.make_url("/v1")), key, args.clients, via
                                )
                            return sum("vllm serve" in c for c in sim.nodes[0].commands) - before

                        keys = ["gemma4", "qwen36"] * args.swaps
                        launches = await rounds(
                            keys[: args.swaps], keys[args.swaps : 2 * args.swaps], stop=False,
                            hand=hand_tally, via=gateway_tally,
                        )  # fmt: skip
                        served = [keys[2 * args.swaps - 1]] * args.starts  # what vLLM serves
                        starts = await rounds(
                            served, served, stop=True, hand=hand_start_tally, via=start_tally
                        )
                finally:
                    await gateway.close()
                    await ha_server.close()
    print(
        f"{args.swaps} swaps each way (vLLM loads {args.load:g} s), {args.clients} openai SDK "
        "requests at once per swap"
    )
    report("by hand: swap_model (wait) on HA, then vLLM", hand_tally)
    report("through the gateway (swap_on_request)", gateway_tally)
    print(f"{args.starts} starts of a stopped vLLM each way")
    report("by hand: swap_model (wait) on HA, then vLLM", hand_start_tally)
    report("through the gateway (swap_on_request)", start_tally)
    worst = max(gateway_tally.delays + start_tally.delays, default=float("inf"))
    failed = gateway_tally.failed + start_tally.failed
    print(
        f"targets: failed 0 -> {failed}; one launch per round -> {launches} for {args.swaps} "
        f"swaps, {starts} for {args.starts} starts; every request answered <= "
        f"{TARGET_RELEASE_S * 1000:.0f} ms after ready -> max {worst * 1000:.1f} ms "
        f"({worst / TARGET_RELEASE_S:.2f}x of the target)"
    )
    for error in sorted(set(gateway_tally.errors + start_tally.errors)):
        print(f"  failure through the gateway: {error}")
    ok = (
        failed == 0
        and gateway_tally.wrong_model + start_tally.wrong_model == 0
        and launches == args.swaps
        and starts == args.starts
        and worst <= TARGET_RELEASE_S
    )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--swaps", type=int, default=4)
    parser.add_argument("--starts", type=int, default=2, help="rounds starting a stopped vLLM")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--load", type=float, default=1.0, help="seconds vLLM loads a model")
    sys.exit(asyncio.run(main(parser.parse_args())))
