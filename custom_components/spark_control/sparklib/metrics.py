"""vLLM `/metrics`: parse samples and turn consecutive samples into rates and medians."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from .errors import SparkError

_RUNNING = "vllm:num_requests_running"
_WAITING = "vllm:num_requests_waiting"
# vLLM renamed gpu_cache_usage_perc to kv_cache_usage_perc (0..1 despite the name).
_KV_CACHE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
_PROMPT_TOKENS = "vllm:prompt_tokens"
_GENERATION_TOKENS = "vllm:generation_tokens"
_TTFT = "vllm:time_to_first_token_seconds"


@dataclass(frozen=True, slots=True)
class VllmMetricsSample:
    """One scrape, summed over every label set (model, engine).

    `ttft_buckets` are the cumulative histogram buckets `(upper_bound, count)`, sorted,
    ending with `(inf, total)`.
    """

    time: float
    requests_running: float
    requests_waiting: float
    kv_cache_usage_pct: float | None
    prompt_tokens_total: float
    generation_tokens_total: float
    ttft_buckets: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class VllmMetrics:
    """What the sensors show: gauges now, rates over the last interval, and the TTFT median
    of the latest requests: those of the last interval that had any (kept while vLLM idles;
    on the first sample, every request since vLLM started). None until the running vLLM
    has answered a request."""

    requests_running: float
    requests_waiting: float
    kv_cache_usage_pct: float | None
    generation_tokens_per_s: float | None
    prompt_tokens_per_s: float | None
    ttft_median_s: float | None


_READ_FAMILIES = (_RUNNING, _WAITING, *_KV_CACHE, _PROMPT_TOKENS, _GENERATION_TOKENS, _TTFT)


def _family_of(line: str) -> str:
    """The metric name a line of exposition text is about ("" for a blank line)."""
    if line.startswith("#"):
        parts = line.split(None, 3)
        return parts[2] if len(parts) > 2 and parts[1] in ("HELP", "TYPE") else ""
    return line.split("{", 1)[0].split(None, 1)[0] if line.strip() else ""


def _lines_read(text: str) -> str:
    """Only the lines of the families read here: vLLM exposes dozens of histograms per
    engine, and the freeze watch scrapes every few seconds."""
    kept = [
        line
        for line in text.splitlines()
        if (name := _family_of(line))
        and any(name == family or name.startswith(family + "_") for family in _READ_FAMILIES)
    ]
    return "\n".join(kept) + "\n" if kept else ""


def parse_vllm_metrics(text: str, now: float | None = None) -> VllmMetricsSample:
    """Parse Prometheus exposition text from vLLM; SparkError when it is not parseable."""
    gauges: dict[str, float] = {}
    buckets: dict[float, float] = {}
    try:
        for family in text_string_to_metric_families(_lines_read(text)):
            for sample in family.samples:
                if family.name == _TTFT and sample.name == _TTFT + "_bucket":
                    bound = float(sample.labels["le"])
                    buckets[bound] = buckets.get(bound, 0.0) + sample.value
                elif sample.name in {_RUNNING, _WAITING, *_KV_CACHE} or sample.name in {
                    _PROMPT_TOKENS + "_total",
                    _GENERATION_TOKENS + "_total",
                }:
                    gauges[sample.name] = gauges.get(sample.name, 0.0) + sample.value
    except (ValueError, KeyError, TypeError) as err:
        raise SparkError(f"unreadable vLLM metrics: {err}") from err
    kv_cache = next((gauges[name] for name in _KV_CACHE if name in gauges), None)
    return VllmMetricsSample(
        time=time.monotonic() if now is None else now,
        requests_running=gauges.get(_RUNNING, 0.0),
        requests_waiting=gauges.get(_WAITING, 0.0),
        kv_cache_usage_pct=None if kv_cache is None else kv_cache * 100.0,
        prompt_tokens_total=gauges.get(_PROMPT_TOKENS + "_total", 0.0),
        generation_tokens_total=gauges.get(_GENERATION_TOKENS + "_total", 0.0),
        ttft_buckets=tuple(sorted(buckets.items())),
    )


class MetricsTracker:
    """Keeps the previous sample so each update yields per-interval rates and medians."""

    def __init__(self) -> None:
        self._previous: VllmMetricsSample | None = None
        self._latest_ttft: float | None = None

    def reset(self) -> None:
        """Forget the previous sample (e.g. after a model swap restarted vLLM)."""
        self._previous = None
        self._latest_ttft = None

    def update(self, sample: VllmMetricsSample) -> VllmMetrics:
        """Fold in a new sample; rates are None on the first sample or a zero interval."""
        previous, self._previous = self._previous, sample
        self._latest_ttft = _latest_ttft(previous, sample, self._latest_ttft)
        generation_rate = prompt_rate = None
        if previous is not None and sample.time > previous.time:
            interval = sample.time - previous.time
            generation_rate = (
                _counter_delta(previous.generation_tokens_total, sample.generation_tokens_total)
                / interval
            )
            prompt_rate = (
                _counter_delta(previous.prompt_tokens_total, sample.prompt_tokens_total) / interval
            )
        return VllmMetrics(
            requests_running=sample.requests_running,
            requests_waiting=sample.requests_waiting,
            kv_cache_usage_pct=sample.kv_cache_usage_pct,
            generation_tokens_per_s=generation_rate,
            prompt_tokens_per_s=prompt_rate,
            ttft_median_s=self._latest_ttft,
        )


def _observations(buckets: tuple[tuple[float, float], ...]) -> float:
    return buckets[-1][1] if buckets else 0.0


def _latest_ttft(
    previous: VllmMetricsSample | None, sample: VllmMetricsSample, kept: float | None
) -> float | None:
    """The median of the requests since `previous` (all of them without one); with none
    since, the `kept` one, unless vLLM restarted (its histogram emptied or shrank): a median
    of the model it served before says nothing about the one it serves now."""
    if previous is None:
        return histogram_median((), sample.ttft_buckets)
    since = histogram_median(previous.ttft_buckets, sample.ttft_buckets)
    if since is not None:
        return since
    restarted = _observations(sample.ttft_buckets) < _observations(previous.ttft_buckets)
    return None if restarted or not _observations(sample.ttft_buckets) else kept


def _counter_delta(before: float, after: float) -> float:
    # A counter that went down was reset (vLLM restarted): everything since counts.
    return after if after < before else after - before


def histogram_median(
    before: tuple[tuple[float, float], ...], after: tuple[tuple[float, float], ...]
) -> float | None:
    """Median of the observations between two cumulative histograms, or None if none.

    Interpolates linearly inside the bucket holding the median (as Prometheus'
    `histogram_quantile` does); a median in the `+Inf` bucket reports the last finite bound.
    """
    if not after:
        return None
    old = dict(before)
    total_before = old.get(math.inf, 0.0)
    total_after = dict(after).get(math.inf, 0.0)
    reset = total_after < total_before or any(count < old.get(bound, 0.0) for bound, count in after)
    deltas = [(bound, count if reset else count - old.get(bound, 0.0)) for bound, count in after]
    total = deltas[-1][1]
    if total <= 0:
        return None
    target = total / 2.0
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in deltas:
        if count >= target:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (target - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound
