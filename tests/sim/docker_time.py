"""Docker's ways of printing time: RFC 3339 timestamps, `Up 2 hours` ages and `--since` parsing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

ZERO_TIME = "0001-01-01T00:00:00Z"
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def now() -> datetime:
    return datetime.now(UTC)


def rfc3339_nano(moment: datetime | None) -> str:
    """Docker inspect's StartedAt/FinishedAt format; the zero time when never set."""
    if moment is None:
        return ZERO_TIME
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def created_at(moment: datetime) -> str:
    """`docker ps` CreatedAt column, e.g. `2026-11-21 09:10:11 +0000 UTC`."""
    return moment.strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


def human_duration(delta: timedelta) -> str:
    """Docker's (go-units) HumanDuration: `Less than a second`, `About a minute`, `3 hours`."""
    seconds = int(delta.total_seconds())
    minutes = seconds // 60
    hours = minutes // 60
    if seconds < 1:
        return "Less than a second"
    if seconds == 1:
        return "1 second"
    if seconds < 60:
        return f"{seconds} seconds"
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    return f"{hours // (24 * 7)} weeks"


def parse_since(value: str, reference: datetime) -> datetime:
    """`docker logs --since`: a Go duration (`10m`, `1h30m`, `2.5s`) or an RFC 3339 timestamp.

    Raises ValueError for anything else, which the command turns into Docker's error text.
    """
    if _DURATION_PART.fullmatch(value) or re.fullmatch(r"(?:\d+(?:\.\d+)?(?:h|ms|m|s))+", value):
        total = sum(
            float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(value)
        )
        return reference - timedelta(seconds=total)
    if re.fullmatch(r"\d+(?:\.\d+)?", value):  # plain Unix timestamp
        return datetime.fromtimestamp(float(value), UTC)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment
