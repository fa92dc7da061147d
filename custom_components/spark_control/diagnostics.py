"""Diagnostics of a cluster entry, with keys and fingerprints of secrets redacted."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .const import CONF_GATEWAY_API_KEY, CONF_HOST_KEYS, CONF_PRIVATE_KEY, CONF_PUBLIC_KEY
from .coordinator import ClusterMetrics, SparkControlConfigEntry
from .sparklib.keys import fingerprint

TO_REDACT = {CONF_PRIVATE_KEY, CONF_PUBLIC_KEY, CONF_GATEWAY_API_KEY}


def _entry_data(entry: SparkControlConfigEntry) -> dict[str, Any]:
    """Entry data with secrets redacted and the pinned host keys as the SHA256 fingerprints
    `ssh-keygen -l` shows (enough to compare with a node; the keys parsed at setup)."""
    data: dict[str, Any] = async_redact_data(dict(entry.data), TO_REDACT)
    data[CONF_HOST_KEYS] = {node: fingerprint(line) for node, line in data[CONF_HOST_KEYS].items()}
    return data


def _metrics(metrics: ClusterMetrics) -> dict[str, Any]:
    return {
        "vllm": asdict(metrics.vllm) if metrics.vllm else None,
        "gpus": {host: [asdict(gpu) for gpu in gpus] for host, gpus in metrics.gpus.items()},
        "containers": {
            service: asdict(info) if info is not None else None
            for service, info in metrics.containers.items()
        }
        if metrics.containers is not None
        else None,
    }


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: SparkControlConfigEntry
) -> dict[str, Any]:
    """Entry data and options, the last polls, the catalog, the last swap, recovery and the
    voice bridges."""
    runtime = entry.runtime_data
    status = runtime.status.data
    progress = runtime.swap.progress
    recovery = runtime.recovery
    voice = runtime.voice
    return {
        "entry": {
            "title": entry.title,
            "data": _entry_data(entry),
            "options": dict(entry.options),
        },
        "status": asdict(status) if status is not None else None,
        "metrics": _metrics(runtime.metrics.data),
        "catalog": runtime.catalog.catalog.to_dict(),
        "catalog_keys": runtime.catalog.catalog.keys(),
        "swap": {
            "status": progress.status,
            "model": progress.model,
            "elapsed_seconds": round(progress.elapsed, 1),
            "last_line": progress.last_line,
        }
        if progress is not None
        else None,
        "recovery": recovery.as_diagnostics(),
        "voice": voice.as_dict() if voice is not None else None,
    }
