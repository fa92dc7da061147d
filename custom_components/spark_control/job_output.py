"""The visible output of a long remote job (a build, a deploy): its last lines and an
estimated percentage, shared by the update entities' installs."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable

from .sparklib.errors import CommandFailed, SparkError

LOG_TAIL_LINES = 20
# BuildKit step lines: "#5 [builder 3/9] RUN ..." or "#3 [1/5] FROM ..." → steps done of total.
_BUILD_STEP = re.compile(r"^#\d+ \[[^\]]*?(\d+)/(\d+)\]")

type Estimate = Callable[[str, int | None], int | None]


def build_step_percentage(line: str, low: int, high: int) -> int | None:
    """Where a BuildKit step line puts a build that spans low-high percent, else None."""
    if (match := _BUILD_STEP.match(line)) is None:
        return None
    done, total = int(match[1]), int(match[2])
    return low + (high - low) * min(done, total) // max(total, 1)


class JobOutput:
    """Collects a job's lines: the last LOG_TAIL_LINES and the percentage `estimate` gives."""

    def __init__(self, estimate: Estimate) -> None:
        self._estimate = estimate
        self._tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        self.percentage: int | None = 0

    @property
    def tail(self) -> tuple[str, ...]:
        return tuple(self._tail)

    def add(self, line: str) -> bool:
        """Take a line; False for a blank one (nothing to show)."""
        if not line.strip():
            return False
        self._tail.append(line)
        estimate = self._estimate(line, self.percentage)
        if estimate is not None:
            self.percentage = max(self.percentage or 0, estimate)
        return True

    def failure_lines(self, error: SparkError) -> list[str]:
        """What to show after a failure: the failing command's last lines, else the tail."""
        if isinstance(error, CommandFailed):
            return error.stderr.splitlines()[-LOG_TAIL_LINES:]
        return list(self._tail)
