"""Node facts (host name, GPU, driver) and /proc/meminfo on realistic output."""

from __future__ import annotations

import pytest

from custom_components.spark_control.sparklib.errors import SparkError
from custom_components.spark_control.sparklib.node_info import (
    MemoryReading,
    NodeFacts,
    parse_meminfo,
    parse_node_facts,
)

# The start of a DGX Spark's /proc/meminfo.
MEMINFO = """MemTotal:       125821184 kB
MemFree:        30179328 kB
MemAvailable:   33554432 kB
Buffers:           65536 kB
"""


def test_gb10_node() -> None:
    assert parse_node_facts("spark-a1b2\n", "NVIDIA GB10, 580.95.05\n") == NodeFacts(
        hostname="spark-a1b2", gpu_name="NVIDIA GB10", driver_version="580.95.05"
    )


def test_several_gpus_and_no_gpu() -> None:
    two = "NVIDIA H100 80GB HBM3, 570.86.15\nNVIDIA H100 80GB HBM3, 570.86.15\n"
    assert parse_node_facts("gpu1", two).gpu_name == "2x NVIDIA H100 80GB HBM3"
    mixed = "NVIDIA L4, 570.86.15\nNVIDIA A2, 570.86.15\n"
    assert parse_node_facts("gpu2", mixed).gpu_name == "NVIDIA L4, NVIDIA A2"
    assert parse_node_facts("cpu-only", "") == NodeFacts("cpu-only", None, None)


@pytest.mark.parametrize(
    ("hostname", "gpus"),
    [("", "NVIDIA GB10, 580.95.05"), ("two words", ""), ("ok", "NVIDIA GB10")],
)
def test_garbage_is_an_error(hostname: str, gpus: str) -> None:
    with pytest.raises(SparkError):
        parse_node_facts(hostname, gpus)


def test_meminfo_used_is_total_minus_available() -> None:
    assert parse_meminfo(MEMINFO) == MemoryReading(
        used_mib=round((125821184 - 33554432) / 1024, 1), total_mib=round(125821184 / 1024, 1)
    )
    with pytest.raises(SparkError):
        parse_meminfo("MemTotal: 1 kB\n")
