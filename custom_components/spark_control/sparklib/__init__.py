"""sparklib: a Home-Assistant-free client for a home-lab GPU cluster.

SSH (pinned host keys, validated argv commands), HTTP health of vLLM/Parakeet/Magpie,
metrics and GPU parsers, the model catalog and the serialized model swap. The HA glue
uses `ClusterClient`; everything else is importable on its own.
"""

from __future__ import annotations

from .catalog import Catalog, ModelEntry, ModelOptions, load_bundled_models
from .cluster import ClusterClient, ClusterConfig, NodeConfig
from .containers import ContainerInfo
from .errors import (
    AuthRejected,
    CannotConnect,
    CommandFailed,
    CommandTimeout,
    HostKeyChanged,
    HostKeyNotPinned,
    InvalidInput,
    ServiceUnreachable,
    SparkError,
    SwapFailed,
    SwapInProgress,
)
from .gpu import GpuStats, parse_nvidia_smi
from .http_api import Endpoint, ServiceApi, VllmState
from .keys import KeyPair, fingerprint, generate_keypair, parse_private_key
from .metrics import MetricsTracker, VllmMetrics, VllmMetricsSample, parse_vllm_metrics
from .progress import Progress, parse_progress
from .ssh import CommandResult, SshNode
from .swap import SwapClaim, SwapProgress, SwapResult, SwapRunner, SwapStatus

__all__ = [
    "AuthRejected",
    "CannotConnect",
    "Catalog",
    "ClusterClient",
    "ClusterConfig",
    "CommandFailed",
    "CommandResult",
    "CommandTimeout",
    "ContainerInfo",
    "Endpoint",
    "GpuStats",
    "HostKeyChanged",
    "HostKeyNotPinned",
    "InvalidInput",
    "KeyPair",
    "MetricsTracker",
    "ModelEntry",
    "ModelOptions",
    "NodeConfig",
    "Progress",
    "ServiceApi",
    "ServiceUnreachable",
    "SparkError",
    "SshNode",
    "SwapClaim",
    "SwapFailed",
    "SwapInProgress",
    "SwapProgress",
    "SwapResult",
    "SwapRunner",
    "SwapStatus",
    "VllmMetrics",
    "VllmMetricsSample",
    "VllmState",
    "fingerprint",
    "generate_keypair",
    "load_bundled_models",
    "parse_nvidia_smi",
    "parse_private_key",
    "parse_progress",
    "parse_vllm_metrics",
]
