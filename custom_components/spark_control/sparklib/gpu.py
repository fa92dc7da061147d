"""Parse `nvidia-smi --query-gpu=... --format=csv,noheader,nounits` output."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from .errors import SparkError

_NOT_AVAILABLE = {"[N/A]", "N/A", "[Not Supported]", "[Unknown Error]", ""}


@dataclass(frozen=True, slots=True)
class GpuStats:
    """One GPU's readings; None where the driver reports `[N/A]` (GB10 memory, for one)."""

    index: int
    name: str
    utilization_pct: float | None
    memory_used_mib: float | None
    memory_total_mib: float | None
    temperature_c: float | None
    power_w: float | None
    power_limit_w: float | None  # the enforced power limit


def parse_nvidia_smi(csv_text: str) -> list[GpuStats]:
    """One GpuStats per CSV line; SparkError on a line that is not the queried shape."""
    gpus: list[GpuStats] = []
    for row in csv.reader(io.StringIO(csv_text), skipinitialspace=True):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != 8:
            raise SparkError(f"unexpected nvidia-smi line: {','.join(row)!r}")
        index, name, util, used, total, temp, power, limit = (cell.strip() for cell in row)
        try:
            gpus.append(
                GpuStats(
                    index=int(index),
                    name=name,
                    utilization_pct=_number(util),
                    memory_used_mib=_number(used),
                    memory_total_mib=_number(total),
                    temperature_c=_number(temp),
                    power_w=_number(power),
                    power_limit_w=_number(limit),
                )
            )
        except ValueError as err:
            raise SparkError(f"unexpected nvidia-smi line: {','.join(row)!r}") from err
    return gpus


def _number(cell: str) -> float | None:
    if cell in _NOT_AVAILABLE:
        return None
    return float(cell)
