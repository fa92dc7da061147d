"""Signs that vLLM stopped serving while its `/health` still says 200.

Two sources besides the one-token probe (`probes.DeepProber`):

- **Frozen generation** (`FreezeDetector`): requests are running, yet neither the generation-
  nor the prompt-token counter of `/metrics` has moved for a whole window. vLLM's V1 engine
  counts a request's prompt tokens only when its prefill completes, so a single long prefill
  looks the same on the counters; the GPU tells them apart (a prefill draws power, a frozen
  engine idles), which is why a stall is confirmed against the GPU's power before it counts.
- **Engine death** (`engine_death`): the lines vLLM logs when its engine core process dies
  (`EngineCore encountered a fatal error.`, `Engine core proc … died unexpectedly`,
  `EngineDeadError`, a CUDA error or out-of-memory exception).

No Home Assistant import; the HA glue (`vllm_watch.py` of the integration) schedules them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .metrics import VllmMetricsSample

DEFAULT_FREEZE_WINDOW = 60.0  # seconds without a token while requests run
# The GPU counts as working (a long prefill, not a freeze) when it draws at least this many
# times its idle power (the lowest reading seen).
BUSY_POWER_RATIO = 2.0

# vLLM's logger: "(EngineCore_DP0 pid=412) ERROR 11-21 09:10:11 [core.py:710] message".
_ERROR_RECORD = re.compile(
    r"(?:^|\s)(?:ERROR|CRITICAL) \d\d-\d\d \d\d:\d\d:\d\d \[[^\]]+\] (?P<message>.+)$"
)
# The last line of a traceback: "vllm.v1.engine.exceptions.EngineDeadError: ...".
_EXCEPTION_LINE = re.compile(
    r"^(?:\(\S+ pid=\d+\) )?(?P<message>[A-Za-z_][\w.]*(?:Error|Exception): .*)$"
)
_DEATH_MESSAGES = (
    re.compile(r"EngineCore encountered a fatal error"),
    re.compile(r"Engine core proc \S+ died unexpectedly"),
    re.compile(r"EngineDeadError"),
    re.compile(r"AsyncLLM output_handler failed"),
    re.compile(r"CUDA error|CUDA out of memory|OutOfMemoryError|NCCL error|illegal memory access"),
)
MAX_DEATH_LINE = 300  # characters of the log line kept in the event


def engine_death(line: str) -> str | None:
    """The message of a log line that says vLLM's engine died, else None.

    Only vLLM's own ERROR records and the exception line ending a traceback count: a request
    log (INFO, with the user's prompt in it) never does, whatever the prompt says.
    """
    line = line.strip()
    match = _ERROR_RECORD.search(line) or _EXCEPTION_LINE.match(line)
    if match is None:
        return None
    message = match.group("message")
    if any(pattern.search(message) for pattern in _DEATH_MESSAGES):
        return message[:MAX_DEATH_LINE]
    return None


@dataclass(frozen=True, slots=True)
class Stall:
    """Requests running with no token counted for `seconds` (a freeze unless the GPU works)."""

    seconds: float
    running: float
    waiting: float
    generation_tokens_total: float

    def describe(self, power_w: float | None) -> str:
        """One sentence for the wedge event and the logbook."""
        power = f"; GPU at {power_w:.0f} W" if power_w is not None else ""
        return (
            f"generation frozen: no token generated or prefilled for {self.seconds:.0f} s "
            f"with {self.running:g} running and {self.waiting:g} waiting{power}"
        )


class FreezeDetector:
    """Follows consecutive `/metrics` samples; reports a stall once no counter moved for the
    window while requests were running, and keeps the GPU's idle power to confirm it."""

    def __init__(self, window: float = DEFAULT_FREEZE_WINDOW) -> None:
        if window <= 0:
            raise ValueError("the freeze window must be positive")
        self.window = window
        self._previous: VllmMetricsSample | None = None
        self._stalled_since: float | None = None
        self.idle_power_w: float | None = None

    def reset(self) -> None:
        """Forget the counters (a swap or restart started a new vLLM; its counters restart)."""
        self._previous = None
        self._stalled_since = None

    def note_power(self, power_w: float | None) -> None:
        """Learn the GPU's idle power from any reading (the lowest one seen)."""
        if power_w is not None and power_w > 0:
            self.idle_power_w = (
                power_w if self.idle_power_w is None else min(self.idle_power_w, power_w)
            )

    def observe(self, sample: VllmMetricsSample, at: float) -> Stall | None:
        """Fold in a sample taken at `at` (seconds); a Stall once it lasted the window."""
        previous, self._previous = self._previous, sample
        if sample.requests_running <= 0:
            self._stalled_since = None
            return None
        moved = previous is None or (
            sample.generation_tokens_total != previous.generation_tokens_total
            or sample.prompt_tokens_total != previous.prompt_tokens_total
        )
        if moved or self._stalled_since is None:
            # Progress (or the first sight of running requests): a stall is counted from here.
            self._stalled_since = at
            return None
        seconds = at - self._stalled_since
        if seconds < self.window:
            return None
        return Stall(
            seconds=seconds,
            running=sample.requests_running,
            waiting=sample.requests_waiting,
            generation_tokens_total=sample.generation_tokens_total,
        )

    def excuse(self, at: float) -> None:
        """The stall had a reason (the GPU works: a prefill): count a new window from `at`."""
        if self._stalled_since is not None:
            self._stalled_since = at

    def gpu_working(self, power_w: float | None) -> bool:
        """Whether a fresh power reading says the GPU still computes (a prefill, not a freeze).

        Without a reading, or before any idle reading, the counters alone decide.
        """
        if power_w is None:
            return False
        self.note_power(power_w)
        idle = self.idle_power_w
        return idle is not None and power_w >= BUSY_POWER_RATIO * idle
