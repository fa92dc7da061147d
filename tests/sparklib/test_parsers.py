"""GPU, docker and vLLM metrics parsers on realistic output."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from custom_components.spark_control.sparklib.containers import (
    parse_docker_inspect,
    parse_docker_ps,
)
from custom_components.spark_control.sparklib.errors import SparkError
from custom_components.spark_control.sparklib.gpu import GpuStats, parse_nvidia_smi
from custom_components.spark_control.sparklib.metrics import (
    MetricsTracker,
    histogram_median,
    parse_vllm_metrics,
)


def test_nvidia_smi_gb10_reports_memory_and_power_limit_not_available() -> None:
    assert parse_nvidia_smi("0, NVIDIA GB10, 87, [N/A], [N/A], 61, 95.32, [N/A]\n") == [
        GpuStats(0, "NVIDIA GB10", 87.0, None, None, 61.0, 95.32, None)
    ]


def test_nvidia_smi_discrete_gpus() -> None:
    text = (
        "0, NVIDIA RTX 6000 Ada Generation, 3, 1024, 49140, 35, 22.51, 300.00\n"
        "1, NVIDIA RTX 6000 Ada Generation, 100, 48000, 49140, 79, [N/A], [Not Supported]\n"
    )
    gpus = parse_nvidia_smi(text)
    assert [gpu.index for gpu in gpus] == [0, 1]
    assert gpus[0].memory_used_mib == 1024.0
    assert gpus[0].memory_total_mib == 49140.0
    assert gpus[1].utilization_pct == 100.0
    assert gpus[0].power_limit_w == 300.0
    assert gpus[1].power_w is None
    assert gpus[1].power_limit_w is None


def test_nvidia_smi_empty_and_garbage() -> None:
    assert parse_nvidia_smi("\n") == []
    with pytest.raises(SparkError):
        parse_nvidia_smi("NVIDIA-SMI has failed because it couldn't communicate with the driver")
    with pytest.raises(SparkError):
        parse_nvidia_smi("x, NVIDIA GB10, 87, [N/A], [N/A], 61, 95.32, [N/A]")
    with pytest.raises(SparkError):  # the limit column missing: not the query's shape
        parse_nvidia_smi("0, NVIDIA GB10, 87, [N/A], [N/A], 61, 95.32")


def test_docker_ps_and_inspect() -> None:
    ps = (
        '{"Command":"\\"vllm serve\\"","CreatedAt":"2026-11-21 09:10:11 +0000 UTC","ID":"3f2a",'
        '"Image":"vllm-node:latest","Names":"vllm_node","Ports":"","State":"running",'
        '"Status":"Up 2 hours"}\n'
        '{"CreatedAt":"2026-11-21 09:10:11 +0000 UTC","ID":"9c1b","Image":"parakeet:1",'
        '"Names":"parakeet-asr","Ports":"0.0.0.0:8000->8000/tcp","State":"exited",'
        '"Status":"Exited (0) 3 minutes ago"}\n'
    )
    containers = parse_docker_ps(ps)
    assert containers["vllm_node"].running
    assert not containers["parakeet-asr"].running
    assert containers["parakeet-asr"].status == "Exited (0) 3 minutes ago"
    with pytest.raises(SparkError):
        parse_docker_ps("Cannot connect to the Docker daemon")

    inspect = (
        '[{"Id":"3f2a","Name":"/vllm_node","RestartCount":2,"Config":{"Image":"vllm-node"},'
        '"State":{"Status":"exited","Running":false,"Restarting":false,"ExitCode":1,'
        '"StartedAt":"2026-11-21T09:10:11.000000000Z","FinishedAt":"2026-11-21T09:12:00Z"}}]'
    )
    info = parse_docker_inspect(inspect)
    assert (info.name, info.running, info.exit_code, info.restart_count) == (
        "vllm_node",
        False,
        1,
        2,
    )
    with pytest.raises(SparkError):
        parse_docker_inspect("[]")


class FakeVllm:
    """vLLM's metric families, built with prometheus_client as vLLM itself does."""

    BUCKETS = (0.01, 0.02, 0.04, 0.1, 0.25, 0.5, 1.0)

    def __init__(self, engines: int = 1) -> None:
        self.registry = CollectorRegistry()
        labels = ["model_name", "engine"]
        self.running = Gauge("vllm:num_requests_running", "r", labels, registry=self.registry)
        self.waiting = Gauge("vllm:num_requests_waiting", "w", labels, registry=self.registry)
        self.kv = Gauge("vllm:kv_cache_usage_perc", "kv", labels, registry=self.registry)
        self.prompt = Counter("vllm:prompt_tokens", "p", labels, registry=self.registry)
        self.generation = Counter("vllm:generation_tokens", "g", labels, registry=self.registry)
        self.ttft = Histogram(
            "vllm:time_to_first_token_seconds",
            "t",
            labels,
            buckets=self.BUCKETS,
            registry=self.registry,
        )
        self.engines = [("m", str(n)) for n in range(engines)]

    def text(self) -> str:
        return generate_latest(self.registry).decode()


def test_parse_sums_engines_and_scales_kv_cache() -> None:
    fake = FakeVllm(engines=2)
    for labels in fake.engines:
        fake.running.labels(*labels).set(2)
        fake.waiting.labels(*labels).set(1)
        fake.kv.labels(*labels).set(0.25)
        fake.generation.labels(*labels).inc(100)
        fake.prompt.labels(*labels).inc(40)
        fake.ttft.labels(*labels).observe(0.03)
    sample = parse_vllm_metrics(fake.text(), now=10.0)
    assert sample.requests_running == 4
    assert sample.requests_waiting == 2
    assert sample.kv_cache_usage_pct == 50.0  # summed over engines: 0.5 -> 50 %
    assert sample.generation_tokens_total == 200
    assert sample.prompt_tokens_total == 80
    assert sample.ttft_buckets[-1] == (math.inf, 2.0)
    assert dict(sample.ttft_buckets)[0.04] == 2.0


def test_parse_old_kv_cache_name_and_garbage() -> None:
    text = (
        '# TYPE vllm:gpu_cache_usage_perc gauge\nvllm:gpu_cache_usage_perc{model_name="m"} 0.125\n'
    )
    sample = parse_vllm_metrics(text, now=1.0)
    assert sample.kv_cache_usage_pct == 12.5
    assert sample.ttft_buckets == ()
    assert parse_vllm_metrics("", now=1.0).kv_cache_usage_pct is None
    with pytest.raises(SparkError):
        parse_vllm_metrics("vllm:num_requests_running{ 1 2 3\n")


def test_tracker_rates_from_deltas_and_ttft_median() -> None:
    fake = FakeVllm()
    labels = fake.engines[0]
    tracker = MetricsTracker()
    fake.generation.labels(*labels).inc(1000)
    first = tracker.update(parse_vllm_metrics(fake.text(), now=100.0))
    assert first.generation_tokens_per_s is None
    assert first.ttft_median_s is None

    fake.generation.labels(*labels).inc(300)
    fake.prompt.labels(*labels).inc(60)
    # Three requests in (0.04, 0.1]: the median (1.5 of 3) sits halfway into that bucket.
    for value in (0.05, 0.06, 0.07):
        fake.ttft.labels(*labels).observe(value)
    second = tracker.update(parse_vllm_metrics(fake.text(), now=130.0))
    assert second.generation_tokens_per_s == pytest.approx(10.0)
    assert second.prompt_tokens_per_s == pytest.approx(2.0)
    assert second.ttft_median_s == pytest.approx(0.04 + 0.06 * 1.5 / 3)

    # No new request in the next interval: rate 0, the latest requests' median kept.
    third = tracker.update(parse_vllm_metrics(fake.text(), now=160.0))
    assert third.generation_tokens_per_s == 0.0
    assert third.ttft_median_s == second.ttft_median_s

    # A slower request later: the median is that interval's alone.
    fake.ttft.labels(*labels).observe(0.3)
    fourth = tracker.update(parse_vllm_metrics(fake.text(), now=190.0))
    assert fourth.ttft_median_s == pytest.approx(0.25 + 0.25 * 0.5)


def test_tracker_ttft_after_a_restart_of_home_assistant_or_vllm() -> None:
    """A tracker's first sample takes every request since vLLM started; a vLLM that
    restarted without answering a request yet has no median (the old model's is dropped)."""
    fake = FakeVllm()
    labels = fake.engines[0]
    for value in (0.05, 0.06, 0.07):
        fake.ttft.labels(*labels).observe(value)
    tracker = MetricsTracker()
    first = tracker.update(parse_vllm_metrics(fake.text(), now=0.0))
    assert first.ttft_median_s == pytest.approx(0.04 + 0.06 * 1.5 / 3)

    restarted = tracker.update(parse_vllm_metrics(FakeVllm().text(), now=30.0))
    assert restarted.ttft_median_s is None
    never_asked = MetricsTracker().update(parse_vllm_metrics(FakeVllm().text(), now=0.0))
    assert never_asked.ttft_median_s is None


def test_tracker_handles_counter_reset() -> None:
    tracker = MetricsTracker()
    before = FakeVllm()
    before.generation.labels("m", "0").inc(5000)
    for _ in range(10):
        before.ttft.labels("m", "0").observe(0.3)
    tracker.update(parse_vllm_metrics(before.text(), now=0.0))
    # vLLM restarted (a swap): counters start again from zero.
    after = FakeVllm()
    after.generation.labels("m", "0").inc(50)
    after.ttft.labels("m", "0").observe(0.015)
    metrics = tracker.update(parse_vllm_metrics(after.text(), now=10.0))
    assert metrics.generation_tokens_per_s == pytest.approx(5.0)
    assert metrics.ttft_median_s == pytest.approx(0.01 + 0.01 * 0.5)


def test_histogram_median_edges() -> None:
    inf = math.inf
    # All observations above the last finite bound: report that bound.
    assert histogram_median((), ((0.1, 0.0), (1.0, 0.0), (inf, 4.0))) == 1.0
    # Median in the first bucket interpolates from zero.
    assert histogram_median((), ((0.1, 2.0), (inf, 2.0))) == pytest.approx(0.05)
    assert histogram_median((), ()) is None
    # Zero interval length: no samples.
    assert histogram_median(((0.1, 1.0), (inf, 1.0)), ((0.1, 1.0), (inf, 1.0))) is None
