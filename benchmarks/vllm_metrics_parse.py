"""CPU cost of reading one vLLM `/metrics` scrape, as the freeze watch does every 2 s: the
integration keeps only the lines of the families it reads, then parses them with
`prometheus_client`'s parser. Baseline in the same run: parsing the whole text.

The text is built like vLLM 0.11's exposition for one engine: its gauges and counters plus the
histograms of the V1 engine (names from vllm/v1/metrics/loggers.py, vLLM's own bucket bounds),
each observed so that every bucket line is present.

    .venv/bin/python benchmarks/vllm_metrics_parse.py [--repeat 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.parser import text_string_to_metric_families

from custom_components.spark_control.sparklib.metrics import parse_vllm_metrics

LABELS = {"model_name": "RedHatAI/Qwen3.6-35B-A3B-NVFP4", "engine": "0"}
SECONDS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
    160.0,
    640.0,
    2560.0,
)
TOKENS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000)
HISTOGRAMS = {
    "vllm:time_to_first_token_seconds": SECONDS,
    "vllm:inter_token_latency_seconds": SECONDS,
    "vllm:time_per_output_token_seconds": SECONDS,
    "vllm:e2e_request_latency_seconds": SECONDS,
    "vllm:request_queue_time_seconds": SECONDS,
    "vllm:request_inference_time_seconds": SECONDS,
    "vllm:request_prefill_time_seconds": SECONDS,
    "vllm:request_decode_time_seconds": SECONDS,
    "vllm:request_prompt_tokens": TOKENS,
    "vllm:request_generation_tokens": TOKENS,
    "vllm:iteration_tokens_total": TOKENS,
    "vllm:request_max_num_generation_tokens": TOKENS,
    "vllm:request_params_n": (1, 2, 5, 10, 20),
    "vllm:request_params_max_tokens": TOKENS,
}


def exposition() -> str:
    registry = CollectorRegistry()
    names = list(LABELS)
    for name in (
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
    ):
        Gauge(name, name, names, registry=registry).labels(**LABELS).set(3)
    for name in (
        "vllm:prompt_tokens",
        "vllm:generation_tokens",
        "vllm:num_preemptions",
        "vllm:prefix_cache_queries",
        "vllm:prefix_cache_hits",
    ):
        Counter(name, name, names, registry=registry).labels(**LABELS).inc(12345)
    success = Counter("vllm:request_success", "s", [*names, "finished_reason"], registry=registry)
    for reason in ("stop", "length", "abort"):
        success.labels(**LABELS, finished_reason=reason).inc(7)
    for name, buckets in HISTOGRAMS.items():
        histogram = Histogram(name, name, names, buckets=buckets, registry=registry)
        for bound in buckets:
            histogram.labels(**LABELS).observe(bound)
    return generate_latest(registry).decode()


def timed(work: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main(repeat: int) -> None:
    text = exposition()
    full = timed(lambda: list(text_string_to_metric_families(text)), repeat)
    ours = timed(lambda: parse_vllm_metrics(text, now=0.0), repeat)
    lines = text.count("\n")
    print(f"exposition: {lines} lines, {len(text) / 1024:.1f} KiB (one engine)")
    print(f"baseline: parse the whole text         median {full * 1000:7.3f} ms")
    print(f"integration: keep read families, parse median {ours * 1000:7.3f} ms")
    print(f"ratio {ours / full:.2f}x; per hour at one scrape every 2 s: {ours * 1800:.2f} s CPU")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=200)
    main(parser.parse_args().repeat)
