"""How fast does recovery act on a wedge report, and how fast is the service back?

Runs N wedge → report → restart → recovered cycles against the in-process simulator (real
HTTP probes with the shipped speech clip, real SSH `docker restart`) through the same
`RecoveryManager` + `DeepProber` + `ClusterClient` the integration uses, with the budget
saved to a JSON file before each restart as HA's Store does. Per cycle it measures:

- report → restart: from `report_wedge()` to the simulated node receiving
  `docker restart parakeet-asr` (a 1 ms watcher on the node's command log);
- restart → recovered: from that command to the `service_recovered` event.

Baselines measured in the same run, hand-written without the recovery code: one raw POST of
the clip to the wedged Parakeet plus one raw SSH round trip (`uname -srm`) on a kept
connection (the least work that can notice a wedge and send a command); and a raw
`docker restart` followed by polling /health every 50 ms and one transcription. The
predecessor noticed a silent wedge only at its next 5-minute poll (worst case 300 s).

Then the same cycle inside a real Home Assistant (the harness's instance, `ha_harness.py`):
from firing `spark_control_wedge_report` on the bus, as the gateway and the Wyoming bridge do,
to the node receiving the restart, and on to `spark_control_service_recovered` on the bus
(HA's Store write and the integration's 250 ms health poll included).

    .venv/bin/python benchmarks/recovery_wedge_to_restart.py [--cycles 10] [--skip-ha]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from custom_components.spark_control.sparklib.cluster import (
    ClusterClient,
    ClusterConfig,
    NodeConfig,
)
from custom_components.spark_control.sparklib.http_api import Endpoint
from custom_components.spark_control.sparklib.keys import generate_keypair
from custom_components.spark_control.sparklib.probes import DeepProber
from custom_components.spark_control.sparklib.recovery import (
    RecoveryEvent,
    RecoveryManager,
    RecoveryTuning,
    RestartBudget,
)
from tests.sim import SimCluster, SimConfig

CLIP = Path(__file__).resolve().parent.parent / "custom_components/spark_control/probe_clip.wav"
RESTART = "docker restart parakeet-asr"
PREDECESSOR_WORST = 300.0


def _endpoint(url: str) -> Endpoint:
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    return Endpoint(parts.hostname, parts.port)


async def _wait_for_command(commands: list[str], count: int) -> float:
    """perf_counter time at which the node has received its `count`-th restart command."""
    while commands.count(RESTART) < count:
        await asyncio.sleep(0.001)
    return time.perf_counter()


def _summary(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(values) * 1000:8.1f} ms   p95 {p95 * 1000:8.1f} ms"


async def _transcribe(session: aiohttp.ClientSession, url: str, clip: bytes) -> int:
    form = aiohttp.FormData()
    form.add_field("file", clip, filename="probe.wav", content_type="audio/wav")
    async with session.post(url + "/v1/audio/transcriptions", data=form) as response:
        await response.read()
        return response.status


async def run(cycles: int) -> None:
    key = generate_keypair()
    clip = CLIP.read_bytes()
    config = SimConfig(nodes=2, authorized_keys=[key.public_key], restart_delay=0.3)
    async with SimCluster(config) as sim, aiohttp.ClientSession() as session:
        urls = {"vllm": sim.vllm.url, "parakeet": sim.parakeet.url, "magpie": sim.magpie.url}
        names = ["node0", "node1"]
        client = ClusterClient(
            ClusterConfig(
                name="bench",
                nodes=[
                    NodeConfig(n.host, n.ssh_port, "spark", node_id=name)
                    for name, n in zip(names, sim.nodes, strict=True)
                ],
                private_key=key.private_key,
                host_keys={
                    name: n.host_public_key for name, n in zip(names, sim.nodes, strict=True)
                },
                endpoints={service: _endpoint(url) for service, url in urls.items()},
                service_nodes={"vllm": "node0", "parakeet": "node1", "magpie": "node1"},
            ),
            session,
        )
        events: list[tuple[float, RecoveryEvent]] = []
        state_file = Path(tempfile.mkdtemp()) / "recovery.json"

        async def save(data: dict[str, Any]) -> None:
            await asyncio.to_thread(state_file.write_text, json.dumps(data))

        async def restart(service: str) -> None:
            await client.service_action(service, "restart")

        manager = RecoveryManager(
            services=("parakeet",),
            prober=DeepProber(session, urls, clip_wav=clip, timeout=30),
            restarter=restart,
            # A budget large enough that every cycle restarts: this measures speed, not policy.
            budget=RestartBudget(cycles + 1, 1800),
            on_event=lambda event: events.append((time.perf_counter(), event)),
            save_budget=save,
            tuning=RecoveryTuning(recovery_timeout=60, health_poll_interval=0.05),
        )
        commands = sim.nodes[1].commands
        await client.validate()  # warm SSH connections, as in a running integration
        await _transcribe(session, sim.parakeet.url, clip)  # warm the recognizer

        to_restart: list[float] = []
        to_recovered: list[float] = []
        for cycle in range(1, cycles + 1):
            sim.faults.wedge("parakeet")
            watcher = asyncio.create_task(_wait_for_command(commands, cycle))
            started = time.perf_counter()
            await manager.report_wedge("parakeet", "HTTP 500", "benchmark")
            restarted_at = await watcher
            recovered_at = next(at for at, e in events if e.kind == "service_recovered")
            events.clear()
            to_restart.append(restarted_at - started)
            to_recovered.append(recovered_at - restarted_at)

        # Baseline 1: notice the wedge with one raw POST, send one raw SSH command.
        raw_notice: list[float] = []
        node = client.nodes["node1"]
        for _ in range(cycles):
            sim.faults.wedge("parakeet")
            started = time.perf_counter()
            status = await _transcribe(session, sim.parakeet.url, clip)
            assert status == 500
            await node.run(["uname", "-srm"])
            raw_notice.append(time.perf_counter() - started)
        await sim.faults.clear()

        # Baseline 2: raw restart, poll /health every 50 ms, then one transcription.
        raw_back: list[float] = []
        for _ in range(cycles):
            started = time.perf_counter()
            await node.run(["docker", "restart", "parakeet-asr"])
            while True:
                try:
                    async with session.get(sim.parakeet.url + "/health") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
            assert await _transcribe(session, sim.parakeet.url, clip) == 200
            raw_back.append(time.perf_counter() - started)
        await client.close()

    med = statistics.median
    print(f"recovery benchmark: {cycles} wedge cycles against the simulator (restart_delay 0.3 s)")
    print(f"  wedge report -> restart command   {_summary(to_restart)}   (goal <= 2000 ms)")
    print(f"  baseline: raw probe + raw SSH     {_summary(raw_notice)}")
    print(f"    ratio (median) recovery/baseline {med(to_restart) / med(raw_notice):.2f}x")
    print(
        f"    vs predecessor's 5-min poll (worst {PREDECESSOR_WORST:.0f} s): "
        f"{PREDECESSOR_WORST / med(to_restart):.0f}x faster"
    )
    print(f"  restart command -> recovered event {_summary(to_recovered)}")
    print(f"  baseline: raw restart + poll + STT {_summary(raw_back)}")
    print(f"    ratio (median) recovery/baseline {med(to_recovered) / med(raw_back):.2f}x")


async def run_in_home_assistant(cycles: int) -> None:
    # Imported here: it starts HA's loader machinery, which the library part does not need.
    from ha_harness import entry_data, home_assistant_with_cluster
    from homeassistant.core import Event, callback

    from custom_components.spark_control.const import (
        EVENT_SERVICE_RECOVERED,
        EVENT_WEDGE_REPORT,
    )
    from custom_components.spark_control.recovery import SparkRecovery
    from tests.sim import generate_client_key

    # HA's and the integration's log lines (a warning per wedge) would bury the figures.
    logging.disable(logging.CRITICAL)
    private_key, public_key = generate_client_key("bench")
    config = SimConfig(nodes=2, authorized_keys=[public_key], restart_delay=0.3)
    async with SimCluster(config) as sim:
        with tempfile.TemporaryDirectory() as tmp:
            data = entry_data(sim.endpoints(), private_key, public_key)
            async with home_assistant_with_cluster(Path(tmp), data) as (hass, entry):
                recovery = entry.runtime_data.recovery
                assert isinstance(recovery, SparkRecovery)
                # Every cycle must restart: this measures speed, not the budget.
                recovery.manager.budget.reconfigure(cycles + 1, 1800)
                recovered_at: list[float] = []

                @callback
                def on_recovered(_event: Event) -> None:
                    recovered_at.append(time.perf_counter())

                unsubscribe = hass.bus.async_listen(EVENT_SERVICE_RECOVERED, on_recovered)
                commands = sim.nodes[1].commands
                to_restart: list[float] = []
                to_recovered: list[float] = []
                for cycle in range(1, cycles + 1):
                    sim.faults.wedge("parakeet")
                    watcher = asyncio.create_task(_wait_for_command(commands, cycle))
                    started = time.perf_counter()
                    hass.bus.async_fire(
                        EVENT_WEDGE_REPORT,
                        {"service": "parakeet", "error": "HTTP 500", "source": "benchmark"},
                    )
                    restarted_at = await watcher
                    while len(recovered_at) < cycle:
                        await asyncio.sleep(0.001)
                    to_restart.append(restarted_at - started)
                    to_recovered.append(recovered_at[-1] - restarted_at)
                unsubscribe()

    print(f"in Home Assistant: {cycles} cycles, bus event to bus event")
    print(f"  wedge report event -> restart     {_summary(to_restart)}   (goal <= 2000 ms)")
    print(f"  restart -> recovered event        {_summary(to_recovered)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--skip-ha", action="store_true", help="only the library-level part")
    args = parser.parse_args()
    asyncio.run(run(args.cycles))
    if not args.skip_ha:
        asyncio.run(run_in_home_assistant(args.cycles))


if __name__ == "__main__":
    main()
