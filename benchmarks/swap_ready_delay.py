"""How fast does a swap report "ready" after vLLM logs `Application startup complete.`?

Runs N swaps against the in-process simulator and measures, per swap, the time from the
moment the simulator appended the startup line to the container log (its LogLine timestamp)
to the moment `SwapRunner` called `on_progress` with status "ready".

Baseline measured in the same run: the same mechanism hand-written without the library
(one raw asyncssh connection following `docker logs -f`, one aiohttp GET /health when the
line appears), so the ratio shows what the library's layering costs. For scale, the
predecessor polled every 5 s: an expected delay of ~2.5 s (uniform over the interval).

    .venv/bin/python benchmarks/swap_ready_delay.py [--swaps 20] [--load-seconds 0.2]

The HA engineer extends this to the select entity (log line -> select state).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import asyncssh

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from custom_components.spark_control.sparklib.catalog import Catalog, load_bundled_models
from custom_components.spark_control.sparklib.commands import (
    docker_logs,
    launch_model,
    stop_cluster,
)
from custom_components.spark_control.sparklib.http_api import Endpoint, ServiceApi
from custom_components.spark_control.sparklib.keys import generate_keypair
from custom_components.spark_control.sparklib.ssh import SshNode
from custom_components.spark_control.sparklib.swap import SwapProgress, SwapRunner
from tests.sim import SimCluster, SimConfig

STARTUP = "Application startup complete."
REPO = "~/spark-vllm-docker"
SOLO_MODELS = ("qwen3-vl", "gemma4", "qwen36")


def startup_line_time(sim: SimCluster) -> datetime:
    """When the simulator wrote the latest startup line."""
    logs = sim.containers["vllm_node"].logs
    return next(line.at for line in reversed(logs) if STARTUP in line.text)


def summary(name: str, delays_ms: list[float]) -> float:
    ordered = sorted(delays_ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    median = statistics.median(ordered)
    print(
        f"{name:<28} n={len(ordered):<3} median={median:7.2f} ms  p95={p95:7.2f} ms  "
        f"max={ordered[-1]:7.2f} ms"
    )
    return median


async def library_swaps(
    sim: SimCluster, node: SshNode, api: ServiceApi, catalog: Catalog, swaps: int
) -> list[float]:
    runner = SwapRunner(node, api, REPO)
    delays: list[float] = []
    for index in range(swaps):
        ready_at: list[datetime] = []

        def on_progress(progress: SwapProgress, ready_at: list[datetime] = ready_at) -> None:
            if progress.status == "ready":
                ready_at.append(datetime.now(UTC))

        entry = catalog.get(SOLO_MODELS[index % len(SOLO_MODELS)])
        await runner.swap(entry, nodes=[node.host], timeout=60, on_progress=on_progress)
        delays.append((ready_at[0] - startup_line_time(sim)).total_seconds() * 1000)
    return delays


async def direct_swaps(
    sim: SimCluster,
    key: asyncssh.SSHKey,
    session: aiohttp.ClientSession,
    catalog: Catalog,
    swaps: int,
) -> list[float]:
    """The same steps with raw asyncssh + aiohttp, no sparklib in the measured path."""
    head = sim.nodes[0]
    delays: list[float] = []
    async with asyncssh.connect(
        head.host,
        head.ssh_port,
        username="spark",
        client_keys=[key],
        known_hosts=([asyncssh.import_public_key(head.host_public_key)], [], []),
        config=None,
    ) as conn:
        for index in range(swaps):
            entry = catalog.get(SOLO_MODELS[index % len(SOLO_MODELS)])
            await conn.run(stop_cluster(REPO).render(), check=True)
            since = datetime.now(UTC)
            await conn.run(
                launch_model(
                    entry, port=urlsplit(sim.vllm.url).port or 0, nodes=[head.host], repo_path=REPO
                ).render(),
                check=True,
            )
            command = docker_logs("vllm_node", follow=True, since=since).render()
            async with conn.create_process(command, stderr=asyncssh.STDOUT) as process:
                async for line in process.stdout:
                    if STARTUP in line:
                        break
            while True:
                async with session.get(sim.vllm.url + "/health") as response:
                    if response.status == 200:
                        break
                await asyncio.sleep(0.1)
            delays.append((datetime.now(UTC) - startup_line_time(sim)).total_seconds() * 1000)
    return delays


async def main(swaps: int, load_seconds: float) -> None:
    pair = generate_keypair()
    catalog = Catalog(load_bundled_models())
    config = SimConfig(nodes=1, authorized_keys=[pair.public_key], load_seconds=load_seconds)
    async with SimCluster(config) as sim, aiohttp.ClientSession() as session:
        vllm = urlsplit(sim.vllm.url)
        api = ServiceApi(session, {"vllm": Endpoint(vllm.hostname or "", vllm.port or 0)})
        node = SshNode(
            sim.nodes[0].host,
            sim.nodes[0].ssh_port,
            "spark",
            pair.private_key,
            sim.nodes[0].host_public_key,
        )
        try:
            # Warm up both paths (connection setup is not what we measure).
            await library_swaps(sim, node, api, catalog, 1)
            direct = await direct_swaps(
                sim, asyncssh.import_private_key(pair.private_key), session, catalog, swaps
            )
            library = await library_swaps(sim, node, api, catalog, swaps)
        finally:
            await node.close()
    print(f"log line 'Application startup complete.' -> swap reported ready ({swaps} swaps)")
    direct_median = summary("direct (asyncssh+aiohttp)", direct)
    library_median = summary("sparklib SwapRunner", library)
    print(f"ratio library/direct (median): {library_median / direct_median:.2f}")
    print(f"ratio predecessor 5 s poll (~2500 ms expected)/library: {2500 / library_median:.0f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--swaps", type=int, default=20)
    parser.add_argument("--load-seconds", type=float, default=0.2)
    args = parser.parse_args()
    asyncio.run(main(args.swaps, args.load_seconds))
