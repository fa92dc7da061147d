"""Runtime data and data update coordinators of a Spark Control cluster entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeassistant.config_entries import ConfigEntry

type SparkControlConfigEntry = ConfigEntry[SparkControlRuntimeData]


@dataclass
class SparkControlRuntimeData:
    """Everything a loaded cluster entry holds while it runs.

    `voice` and `recovery` are filled by their own modules (objects with `async_stop()`).
    """

    client: Any
    status: Any
    metrics: Any
    catalog: Any
    voice: Any | None = None
    recovery: Any | None = None
