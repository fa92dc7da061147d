"""What a node says about itself: host name, GPU model, driver, and unified memory.

Read once at setup for the device registry (host name, GPU, driver) and, on GPUs whose
framebuffer numbers are `[N/A]` (GB10's unified memory), on every metrics poll from
`/proc/meminfo`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from .errors import SparkError

_KIB_PER_MIB = 1024


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """A node's identity as it reports it; None where it could not say."""

    hostname: str
    gpu_name: str | None
    driver_version: str | None


@dataclass(frozen=True, slots=True)
class MemoryReading:
    """System memory in MiB: used is MemTotal minus MemAvailable, as `free` computes it."""

    used_mib: float
    total_mib: float


def parse_node_facts(hostname_text: str, gpu_csv: str) -> NodeFacts:
    """`uname -n` output and `nvidia-smi --query-gpu=name,driver_version` CSV lines."""
    hostname = hostname_text.strip()
    if not hostname or any(char.isspace() for char in hostname):
        raise SparkError(f"unexpected uname -n output: {hostname_text[:100]!r}")
    rows = [
        [cell.strip() for cell in row]
        for row in csv.reader(io.StringIO(gpu_csv), skipinitialspace=True)
        if row and any(cell.strip() for cell in row)
    ]
    if any(len(row) != 2 for row in rows):
        raise SparkError(f"unexpected nvidia-smi output: {gpu_csv[:200]!r}")
    names = list(dict.fromkeys(row[0] for row in rows))
    drivers = {row[1] for row in rows}
    gpu_name = None
    if names:
        # Several GPUs of one kind read "2x NVIDIA H100"; mixed kinds are listed.
        gpu_name = f"{len(rows)}x {names[0]}" if len(names) == 1 and len(rows) > 1 else names[0]
        if len(names) > 1:
            gpu_name = ", ".join(names)
    return NodeFacts(
        hostname=hostname,
        gpu_name=gpu_name,
        driver_version=drivers.pop() if len(drivers) == 1 else None,
    )


def parse_meminfo(text: str) -> MemoryReading:
    """`/proc/meminfo` → used and total memory (kB lines `MemTotal:  123 kB`)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if key in ("MemTotal", "MemAvailable") and fields and fields[0].isdigit():
            values[key] = int(fields[0])
    if "MemTotal" not in values or "MemAvailable" not in values:
        raise SparkError("no MemTotal/MemAvailable in /proc/meminfo")
    total = values["MemTotal"] / _KIB_PER_MIB
    available = values["MemAvailable"] / _KIB_PER_MIB
    return MemoryReading(used_mib=round(total - available, 1), total_mib=round(total, 1))
