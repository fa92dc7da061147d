"""What one poll cycle of the integration costs: HTTP requests, bytes, event-loop CPU.

The simulated cluster runs in its own process (so the event loop measured here runs only
Home Assistant), a real Home Assistant sets the integration up against it, and the fast status
coordinator is refreshed N times; then the slow metrics coordinator (vLLM /metrics + nvidia-smi
over the kept SSH connections). Event-loop CPU is `time.thread_time()` of the loop thread.

Baseline in the same run: the same four health requests issued directly with one keep-alive
aiohttp session (no HA, no coordinator), so the ratio shows what the HA glue adds.

    .venv/bin/python benchmarks/ha_poll_cost.py [--cycles 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import aiohttp
from ha_harness import ROOT, entry_data, home_assistant_with_cluster
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from tests.sim import generate_client_key


@dataclass
class Traffic:
    requests: int = 0
    bytes_in: int = 0
    new_connections: int = 0

    def trace(self) -> aiohttp.TraceConfig:
        config = aiohttp.TraceConfig()

        async def request_end(*_: object) -> None:
            self.requests += 1

        async def chunk(_s: object, _c: SimpleNamespace, params: object) -> None:
            self.bytes_in += len(params.chunk)  # type: ignore[attr-defined]

        async def connection(*_: object) -> None:
            self.new_connections += 1

        config.on_request_end.append(request_end)
        config.on_response_chunk_received.append(chunk)
        config.on_connection_create_end.append(connection)
        config.freeze()
        return config


async def measure(
    name: str, cycles: int, traffic: Traffic, cycle: Callable[[], Awaitable[object]]
) -> float:
    await cycle()  # warm-up: connections opened, caches filled
    start = (traffic.requests, traffic.bytes_in, traffic.new_connections)
    cpu: list[float] = []
    wall: list[float] = []
    for _ in range(cycles):
        t_cpu, t_wall = time.thread_time(), time.perf_counter()
        await cycle()
        cpu.append((time.thread_time() - t_cpu) * 1000)
        wall.append((time.perf_counter() - t_wall) * 1000)
    requests = (traffic.requests - start[0]) / cycles
    kbytes = (traffic.bytes_in - start[1]) / cycles / 1024
    print(
        f"{name:<34} requests/cycle={requests:4.1f}  body KiB/cycle={kbytes:6.2f}  "
        f"new connections={traffic.new_connections - start[2]:<3} "
        f"loop CPU median={statistics.median(cpu):6.2f} ms  "
        f"wall median={statistics.median(wall):6.2f} ms"
    )
    return statistics.median(cpu)


async def main(cycles: int) -> None:
    private_key, public_key = generate_client_key("bench")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "key.pub").write_text(public_key + "\n")
        endpoints_file = work / "endpoints.json"
        sim = subprocess.Popen(
            [
                sys.executable, "-m", "tests.sim", "--nodes", "2",
                "--authorized-key-file", str(work / "key.pub"),
                "--write-endpoints", str(endpoints_file),
            ],
            cwd=ROOT,
        )  # fmt: skip
        try:
            for _ in range(200):
                if endpoints_file.exists():
                    break
                await asyncio.sleep(0.05)
            endpoints = json.loads(endpoints_file.read_text())
            (work / "ha").mkdir()
            data = entry_data(endpoints, private_key, public_key)
            async with home_assistant_with_cluster(work / "ha", data) as (hass, entry):
                traffic = Traffic()
                session = async_get_clientsession(hass)
                # Benchmark-only: count the shared session's traffic with an aiohttp trace.
                session._trace_configs.append(traffic.trace())
                runtime = entry.runtime_data
                ha_status = await measure(
                    "HA status poll (5 s coordinator)",
                    cycles,
                    traffic,
                    runtime.status.async_refresh,
                )
                await measure(
                    "HA metrics poll (30 s coordinator)",
                    max(5, cycles // 5),
                    traffic,
                    runtime.metrics.async_refresh,
                )

                services = endpoints["services"]
                urls = [
                    services["vllm"]["url"] + "/health",
                    services["vllm"]["url"] + "/v1/models",
                    services["parakeet"]["url"] + "/health",
                    services["magpie"]["url"] + "/v1/health/ready",
                ]
                direct_traffic = Traffic()
                async with aiohttp.ClientSession(trace_configs=[direct_traffic.trace()]) as direct:

                    async def direct_cycle() -> None:
                        for url in urls:
                            async with direct.get(url) as response:
                                await response.read()

                    baseline = await measure(
                        "direct aiohttp (baseline)", cycles, direct_traffic, direct_cycle
                    )
                print(
                    f"HA status poll / direct baseline loop CPU ratio: {ha_status / baseline:.2f}x"
                )
        finally:
            sim.terminate()
            sim.wait(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=50)
    asyncio.run(main(parser.parse_args().cycles))
