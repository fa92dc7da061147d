"""Time from a failed swap to the last good model serving again (goal: at most that model's
load time + 2 s).

A real Home Assistant runs the integration against the in-process simulator. Each round first
swaps to `qwen3-vl` normally (the baseline in the same run: how long a plain load of that model
takes, swap started -> swap finished), then asks for `gemma4`, whose load the simulator makes
run out of GPU memory. Measured: the swap_failed event -> the swap_fell_back event (fired once
the status poll confirmed vLLM serves `qwen3-vl` again).

    .venv/bin/python benchmarks/ha_swap_fallback.py [--rounds 5] [--load-seconds 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

from ha_harness import entry_data, home_assistant_with_cluster
from homeassistant.core import Event, callback

from custom_components.spark_control.const import (
    DOMAIN,
    EVENT_SWAP_FAILED,
    EVENT_SWAP_FELL_BACK,
    EVENT_SWAP_FINISHED,
    EVENT_SWAP_STARTED,
)
from tests.sim import SimCluster, SimConfig, generate_client_key

GOOD, BAD = "qwen3-vl", "gemma4"


async def main(rounds: int, load_seconds: float) -> None:
    private_key, public_key = generate_client_key("bench")
    config = SimConfig(nodes=2, authorized_keys=[public_key], load_seconds=load_seconds)
    async with SimCluster(config) as sim:
        sim.faults.oom_on_load("google/gemma-4-27b-it")
        with tempfile.TemporaryDirectory() as tmp:
            data = entry_data(sim.endpoints(), private_key, public_key)
            async with home_assistant_with_cluster(Path(tmp), data) as (hass, entry):
                events: dict[str, list[Event]] = {}

                @callback
                def record(event: Event) -> None:
                    events.setdefault(event.event_type, []).append(event)

                for kind in (EVENT_SWAP_STARTED, EVENT_SWAP_FINISHED, EVENT_SWAP_FAILED):
                    hass.bus.async_listen(kind, record)
                hass.bus.async_listen(EVENT_SWAP_FELL_BACK, record)

                async def swap(model: str) -> None:
                    events.clear()
                    await hass.services.async_call(
                        DOMAIN,
                        "swap_model",
                        {"cluster": entry.entry_id, "model": model},
                        blocking=True,
                    )
                    await hass.async_block_till_done(wait_background_tasks=True)

                plain: list[float] = []
                fallback: list[float] = []
                for _ in range(rounds):
                    await swap(GOOD)
                    started = events[EVENT_SWAP_STARTED][0].time_fired
                    finished = events[EVENT_SWAP_FINISHED][0].time_fired
                    plain.append((finished - started).total_seconds())
                    await swap(BAD)
                    failed = events[EVENT_SWAP_FAILED][0].time_fired
                    fell_back = events[EVENT_SWAP_FELL_BACK][0].time_fired
                    fallback.append((fell_back - failed).total_seconds())
    base, fall = statistics.median(plain), statistics.median(fallback)
    print(
        f"plain load of {GOOD} (baseline)    n={rounds} median={base:.3f} s  max={max(plain):.3f} s"
    )
    print(
        f"failed swap -> {GOOD} serving   n={rounds} median={fall:.3f} s  max={max(fallback):.3f} s"
    )
    print(f"fallback / plain load: {fall / base:.2f}x; fallback - plain load: {fall - base:+.3f} s")
    print(f"goal (<= plain load + 2 s): {'met' if max(fallback) <= base + 2 else 'NOT met'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--load-seconds", type=float, default=0.5)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.load_seconds))
