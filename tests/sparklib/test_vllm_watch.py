"""The freeze detector and the engine-death line matcher, on vLLM's real metric names and log
lines (the simulator's HA tests run them end to end)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from custom_components.spark_control.sparklib.metrics import parse_vllm_metrics
from custom_components.spark_control.sparklib.vllm_watch import (
    FreezeDetector,
    Stall,
    engine_death,
)


class Engine:
    """vLLM's V1 counters and gauges, exposed as its `/metrics` renders them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = {"model_name": "m", "engine": "0"}
        self.running = Gauge(
            "vllm:num_requests_running", "r", list(labels), registry=self.registry
        ).labels(**labels)
        self.waiting = Gauge(
            "vllm:num_requests_waiting", "w", list(labels), registry=self.registry
        ).labels(**labels)
        self.generated = Counter(
            "vllm:generation_tokens", "g", list(labels), registry=self.registry
        ).labels(**labels)
        self.prefilled = Counter(
            "vllm:prompt_tokens", "p", list(labels), registry=self.registry
        ).labels(**labels)

    def scrape(self, detector: FreezeDetector, at: float) -> Stall | None:
        sample = parse_vllm_metrics(generate_latest(self.registry).decode(), now=at)
        return detector.observe(sample, at)


def test_a_stall_is_reported_after_the_window_from_the_last_progress() -> None:
    engine, detector = Engine(), FreezeDetector(window=10)
    engine.running.set(2)
    engine.waiting.set(1)
    engine.generated.inc(5)
    assert engine.scrape(detector, 0) is None
    engine.generated.inc(5)
    assert engine.scrape(detector, 2) is None  # progress: the window starts here
    assert engine.scrape(detector, 8) is None
    stall = engine.scrape(detector, 12)
    assert stall is not None
    assert stall.seconds == 10
    assert stall.describe(14.3) == (
        "generation frozen: no token generated or prefilled for 10 s with 2 running and "
        "1 waiting; GPU at 14 W"
    )


def test_prompt_progress_idle_engine_and_a_reset_are_no_stall() -> None:
    engine, detector = Engine(), FreezeDetector(window=10)
    engine.running.set(4)
    engine.scrape(detector, 0)
    for at in (6, 12, 18):  # prefills completing one by one: no generation token yet
        engine.prefilled.inc(1000)
        assert engine.scrape(detector, at) is None
    engine.running.set(0)  # nothing running: nothing can be frozen
    assert engine.scrape(detector, 40) is None
    engine.running.set(1)
    assert engine.scrape(detector, 42) is None  # the window starts at the first sight
    detector.reset()  # a swap: counters start again
    assert engine.scrape(detector, 60) is None


def test_gpu_power_tells_a_prefill_from_a_freeze() -> None:
    detector = FreezeDetector(window=10)
    assert not detector.gpu_working(None)  # no reading: the counters decide
    detector.note_power(14.3)  # idle, from the metrics poll
    assert detector.gpu_working(34.2)  # a prefill draws power
    assert not detector.gpu_working(15.0)  # a frozen engine idles
    with pytest.raises(ValueError, match="positive"):
        FreezeDetector(window=0)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "(EngineCore_DP0 pid=412) ERROR 11-21 09:10:11 [core.py:710] EngineCore encountered"
            " a fatal error.",
            "EngineCore encountered a fatal error.",
        ),
        (
            "ERROR 11-21 09:10:11 [core_client.py:564] Engine core proc EngineCore_DP0 died "
            "unexpectedly, shutting down client.",
            "Engine core proc EngineCore_DP0 died unexpectedly, shutting down client.",
        ),
        (
            "vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue.",
            "vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue.",
        ),
        (
            "(EngineCore_DP0 pid=412) torch.OutOfMemoryError: CUDA out of memory. Tried to "
            "allocate 2.00 GiB.",
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.",
        ),
        (
            "RuntimeError: NCCL error: unhandled system error",
            "RuntimeError: NCCL error: unhandled system error",
        ),
    ],
)
def test_engine_death_lines(line: str, message: str) -> None:
    assert engine_death(line) == message


@pytest.mark.parametrize(
    "line",
    [
        # A request log carries the user's prompt: whatever it says, it is not a death.
        "INFO 11-21 09:10:11 [logger.py:41] Received request cmpl-1: prompt: 'EngineDeadError "
        "CUDA error', params: SamplingParams(n=1)",
        'INFO:     127.0.0.1:5000 - "POST /v1/chat/completions HTTP/1.1" 500 Internal Server Error',
        "WARNING 11-21 09:10:11 [core.py:10] CUDA error counters reset",
        "ValueError: max_tokens must be at least 1",  # a refused request, not a death
        "",
    ],
)
def test_other_lines_are_not_deaths(line: str) -> None:
    assert engine_death(line) is None
