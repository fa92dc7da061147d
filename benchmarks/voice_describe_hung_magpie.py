"""A hung Magpie must not slow the TTS bridge down: bridge start and Describe → info.

Home Assistant's Wyoming integration gives a Describe about 1 s before it counts the service as
unreachable, so the TTS bridge answers from its voice catalog and never waits for Magpie's voice
list. The test (`tests/integration/voice/test_protocol.py`) proves the answer does not wait for
Magpie at all (30 s against a 120 s hang); this script measures how quickly it comes, with the
same bridges against a healthy Magpie in the same run as the baseline.

Per round, for each Magpie (healthy, then hung by the simulator's fault): start fresh bridges
(their start waits at most `voice_list_wait` for the voice list) and time the start, then time
`--describes` Describe → info exchanges on new connections, as Home Assistant makes them.

    .venv/bin/python benchmarks/voice_describe_hung_magpie.py [--rounds 5] [--describes 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info

from custom_components.spark_control.sparklib.voice import VoiceBridgeConfig, VoiceBridges
from tests.sim import SimCluster, SimConfig

HA_DESCRIBE_WAIT_S = 1.0  # what Home Assistant's wyoming integration allows a Describe
VOICE_LIST_WAIT_S = 0.3  # start's wait for the voice list, as the protocol test has it (default 5)


async def _describe_s(port: int) -> float:
    started = time.perf_counter()
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Describe().event())
        while (event := await client.read_event()) is not None:
            if Info.is_type(event.type):
                return time.perf_counter() - started
    raise RuntimeError("the bridge closed the connection without an info event")


async def _round(
    session: aiohttp.ClientSession, sim: SimCluster, describes: int
) -> tuple[float, list[float]]:
    config = VoiceBridgeConfig(
        sim.parakeet.url,
        sim.magpie.url,
        0,
        0,
        host="127.0.0.1",
        voice_list_wait=VOICE_LIST_WAIT_S,
        request_timeout=120,
    )
    bridges = VoiceBridges(session, config)
    started = time.perf_counter()
    await bridges.start()
    start_s = time.perf_counter() - started
    try:
        return start_s, [await _describe_s(bridges.tts.port) for _ in range(describes)]
    finally:
        await bridges.async_stop()


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(values) * 1e3:7.2f} ms  p95 {p95 * 1e3:7.2f} ms"


async def main(rounds: int, describes: int) -> None:
    starts: dict[str, list[float]] = {"healthy": [], "hung": []}
    answers: dict[str, list[float]] = {"healthy": [], "hung": []}
    async with SimCluster(SimConfig()) as sim, aiohttp.ClientSession() as session:
        for _ in range(rounds):
            start_s, times = await _round(session, sim, describes)
            starts["healthy"].append(start_s)
            answers["healthy"] += times
            sim.faults.hang("magpie")
            start_s, times = await _round(session, sim, describes)
            starts["hung"].append(start_s)
            answers["hung"] += times
            await sim.faults.clear()
    print(f"{rounds} rounds, {describes} Describes per bridge start")
    for magpie in ("healthy", "hung"):
        start, describe = _ms(starts[magpie]), _ms(answers[magpie])
        print(f"  {magpie:7}  start {start}   Describe -> info {describe}")
    worst = max(answers["hung"])
    verdict = "met" if worst <= HA_DESCRIBE_WAIT_S else "MISSED"
    print(
        f"hung Magpie: slowest Describe {worst * 1e3:.2f} ms against HA's "
        f"{HA_DESCRIBE_WAIT_S:.0f} s ({verdict}); median start "
        f"{statistics.median(starts['hung']) / statistics.median(starts['healthy']):.2f}x the "
        f"healthy one (bounded by voice_list_wait {VOICE_LIST_WAIT_S} s)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--describes", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.describes))
