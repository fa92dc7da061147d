"""What the gateway adds to vLLM traffic, measured against calling the simulated vLLM directly.

    .venv/bin/python benchmarks/gateway_relay.py [--quick]

Three processes share the machine's cores, as on a small HA host: the simulated vLLM (its token
pacing switched off so it answers as fast as it can), the gateway (`python -m spark_gateway`),
and this load generator (aiohttp). Every measurement alternates direct and gateway requests in
the same run, so drift on a shared box hits both sides alike. Reported:

- added latency of a non-streamed chat completion (median of paired differences);
- added time to the first streamed byte;
- relay cost per streamed chunk (SSE event);
- throughput with 64 concurrent streams, gateway / direct;
- the gateway's resident memory before, at the peak of, and after that load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-bench-0123456789"
MODEL = "RedHatAI/Qwen3.6-35B-A3B-NVFP4"


async def serve_sim(url_file: Path) -> None:
    """Child-process mode: one simulated vLLM with no token pacing and room for 256 sequences."""
    sys.path.insert(0, str(ROOT))
    from tests.sim import SimCluster, SimConfig

    config = SimConfig(
        nodes=1, token_rate=1e9, load_seconds=0.0, max_num_seqs=256, kv_cache_tokens=10_000_000
    )
    async with SimCluster(config) as sim:
        url_file.write_text(sim.vllm.url)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for(url: str, session: aiohttp.ClientSession) -> None:
    for _ in range(400):
        try:
            async with session.get(url) as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def chat_body(max_tokens: int, stream: bool) -> bytes:
    return json.dumps(
        {
            "model": MODEL,
            "max_tokens": max_tokens,
            "stream": stream,
            "messages": [{"role": "user", "content": "Write about the sea"}],
        }
    ).encode()


class Bench:
    def __init__(self, session: aiohttp.ClientSession, direct: str, gateway: str) -> None:
        self.session = session
        self.targets = {"direct": direct, "gateway": gateway}
        self.headers = {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"}

    async def chat(self, target: str, max_tokens: int) -> float:
        start = time.perf_counter()
        async with self.session.post(
            f"{self.targets[target]}/v1/chat/completions",
            data=chat_body(max_tokens, False),
            headers=self.headers,
        ) as resp:
            await resp.read()
            assert resp.status == 200, resp.status
        return time.perf_counter() - start

    async def stream(self, target: str, max_tokens: int) -> tuple[float, float, int]:
        """Time to first byte, total time, SSE events received."""
        start = time.perf_counter()
        async with self.session.post(
            f"{self.targets[target]}/v1/chat/completions",
            data=chat_body(max_tokens, True),
            headers=self.headers,
        ) as resp:
            assert resp.status == 200, resp.status
            first = await resp.content.readany()
            ttfb = time.perf_counter() - start
            rest = await resp.read()
        events = (first + rest).count(b"data: ")
        return ttfb, time.perf_counter() - start, events

    async def paired(self, rounds: int, measure: Any) -> dict[str, list[float]]:
        results: dict[str, list[float]] = {"direct": [], "gateway": []}
        for i in range(rounds):
            order = ("direct", "gateway") if i % 2 == 0 else ("gateway", "direct")
            for target in order:
                results[target].append(await measure(target))
        return results

    async def throughput(self, target: str, clients: int, max_tokens: int) -> tuple[float, int]:
        start = time.perf_counter()
        results = await asyncio.gather(*(self.stream(target, max_tokens) for _ in range(clients)))
        elapsed = time.perf_counter() - start
        events = sum(r[2] for r in results)
        return events / elapsed, events


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


async def run(quick: bool) -> dict[str, Any]:
    rounds = 60 if quick else 300
    work = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    url_file = work / "sim_url"
    sim = subprocess.Popen([sys.executable, __file__, "--serve-sim", str(url_file)], cwd=ROOT)
    port = free_port()
    config = work / "gateway.json"
    gateway = None
    try:
        for _ in range(200):
            if url_file.exists() and url_file.read_text():
                break
            time.sleep(0.05)
        direct = url_file.read_text()
        config.write_text(
            json.dumps(
                {
                    "host": "127.0.0.1",
                    "port": port,
                    "vllm_url": direct,
                    "api_keys": [KEY],
                    "data_dir": str(work),
                    "max_concurrent_requests": 4096,
                    "log_level": "warning",
                }
            )
        )
        gateway = subprocess.Popen(
            [sys.executable, "-m", "spark_gateway", "--config", str(config)],
            env={**os.environ, "PYTHONPATH": str(ROOT / "addon")},
        )
        gateway_url = f"http://127.0.0.1:{port}"
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            await wait_for(f"{direct}/health", session)
            await wait_for(f"{gateway_url}/health", session)
            bench = Bench(session, direct, gateway_url)
            proc = psutil.Process(gateway.pid)
            for _ in range(30):  # warm up connections and code paths on both sides
                await bench.chat("direct", 1)
                await bench.chat("gateway", 1)
                await bench.stream("direct", 8)
                await bench.stream("gateway", 8)

            chat = await bench.paired(rounds, lambda t: bench.chat(t, 1))
            chat_added = statistics.median(
                g - d for g, d in zip(chat["gateway"], chat["direct"], strict=True)
            )

            async def first_byte(target: str) -> float:
                return (await bench.stream(target, 1))[0]

            ttfb = await bench.paired(rounds, first_byte)
            ttfb_added = statistics.median(
                g - d for g, d in zip(ttfb["gateway"], ttfb["direct"], strict=True)
            )

            long_tokens = 2000
            events_per_stream = (await bench.stream("direct", long_tokens))[2]

            async def long_stream(target: str) -> float:
                return (await bench.stream(target, long_tokens))[1]

            long = await bench.paired(10 if quick else 30, long_stream)
            per_chunk = (statistics.median(long["gateway"]) - statistics.median(long["direct"])) / (
                events_per_stream
            )

            rss_before = proc.memory_info().rss
            peak = rss_before
            sampling = True

            async def sample() -> None:
                nonlocal peak
                while sampling:
                    peak = max(peak, proc.memory_info().rss)
                    await asyncio.sleep(0.02)

            sampler = asyncio.create_task(sample())
            clients, per_client = 64, 300
            rates: dict[str, list[float]] = {"direct": [], "gateway": []}
            for i in range(2 if quick else 4):
                order = ("direct", "gateway") if i % 2 == 0 else ("gateway", "direct")
                for target in order:
                    rate, _ = await bench.throughput(target, clients, per_client)
                    rates[target].append(rate)
            sampling = False
            await sampler
            rss_after = proc.memory_info().rss
    finally:
        for child in (gateway, sim):
            if child is not None:
                child.send_signal(signal.SIGTERM)
                child.wait(timeout=30)

    direct_rate = statistics.median(rates["direct"])
    gateway_rate = statistics.median(rates["gateway"])
    return {
        "rounds": rounds,
        "chat_direct_median_ms": statistics.median(chat["direct"]) * 1000,
        "chat_gateway_median_ms": statistics.median(chat["gateway"]) * 1000,
        "chat_added_ms": chat_added * 1000,
        "ttfb_direct_median_ms": statistics.median(ttfb["direct"]) * 1000,
        "ttfb_gateway_median_ms": statistics.median(ttfb["gateway"]) * 1000,
        "ttfb_added_ms": ttfb_added * 1000,
        "events_per_long_stream": events_per_stream,
        "per_chunk_added_ms": per_chunk * 1000,
        "stream64_direct_events_per_s": direct_rate,
        "stream64_gateway_events_per_s": gateway_rate,
        "stream64_ratio": gateway_rate / direct_rate,
        "gateway_rss_mib_before": rss_before / 2**20,
        "gateway_rss_mib_peak": peak / 2**20,
        "gateway_rss_mib_after": rss_after / 2**20,
    }


def report(r: dict[str, Any]) -> None:
    print(
        f"non-streamed chat   direct {r['chat_direct_median_ms']:.3f} ms   "
        f"gateway {r['chat_gateway_median_ms']:.3f} ms   added {r['chat_added_ms']:.3f} ms"
        f"  (goal <= 1 ms; LiteLLM 14 ms)"
    )
    print(
        f"first streamed byte direct {r['ttfb_direct_median_ms']:.3f} ms   "
        f"gateway {r['ttfb_gateway_median_ms']:.3f} ms   added {r['ttfb_added_ms']:.3f} ms"
        f"  (goal <= 2 ms; LiteLLM 16 ms)"
    )
    print(
        f"relay per chunk     {r['per_chunk_added_ms']:.4f} ms over "
        f"{r['events_per_long_stream']} events  (goal <= 0.05 ms; LiteLLM 0.85 ms)"
    )
    print(
        f"64 streams          direct {r['stream64_direct_events_per_s']:.0f} ev/s   "
        f"gateway {r['stream64_gateway_events_per_s']:.0f} ev/s   "
        f"ratio {r['stream64_ratio']:.2f}x  (goal >= 0.5x; LiteLLM 0.02x)"
    )
    print(
        f"gateway RSS         before {r['gateway_rss_mib_before']:.1f} MiB   "
        f"peak {r['gateway_rss_mib_peak']:.1f} MiB   after {r['gateway_rss_mib_after']:.1f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (smoke run)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument("--serve-sim", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sim:
        asyncio.run(serve_sim(args.serve_sim))
        return
    results = asyncio.run(run(args.quick))
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
