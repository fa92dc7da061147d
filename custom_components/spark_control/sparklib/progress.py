"""Read tqdm progress bars (`hf download`, vLLM's shard loading) out of output lines."""

from __future__ import annotations

import re
from dataclasses import dataclass

_TQDM = re.compile(
    # "...: 42%|████      | 5/12 [...]" (tqdm's default) or "...: 50% Completed | 4/8 [...]" (vLLM).
    r"(?P<desc>[^|\r\n]*?):?\s*(?P<percent>\d{1,3})%(?:\|[^|]*\||\s*Completed\s*\|)\s*"
    r"(?P<done>\d+(?:\.\d+)?)(?P<unit>[kMGT]?)/(?P<total>\d+(?:\.\d+)?)[kMGT]?\s*"
    r"\[(?P<elapsed>[\d:]+)<(?P<eta>[\d:?]+)(?:,\s*(?P<rate>[^\]]*))?\]"
)


@dataclass(frozen=True, slots=True)
class Progress:
    """One redraw of a tqdm bar."""

    description: str
    percent: int
    done: float
    total: float
    elapsed: str  # as printed, e.g. "00:10"
    eta: str  # as printed, e.g. "00:14" or "?"
    rate: str | None  # e.g. "2.1MB/s"


def parse_progress(line: str) -> Progress | None:
    """The progress a tqdm line shows, or None for any other line."""
    match = _TQDM.search(line)
    if match is None:
        return None
    return Progress(
        description=match["desc"].strip(),
        percent=min(100, int(match["percent"])),
        done=float(match["done"]),
        total=float(match["total"]),
        elapsed=match["elapsed"],
        eta=match["eta"],
        rate=(match["rate"] or "").strip() or None,
    )
