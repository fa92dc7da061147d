"""Diagnostics of a cluster entry, with keys and fingerprints of secrets redacted."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .const import CONF_GATEWAY_API_KEY, CONF_PRIVATE_KEY, CONF_PUBLIC_KEY
from .coordinator import SparkControlConfigEntry

TO_REDACT = {CONF_PRIVATE_KEY, CONF_PUBLIC_KEY, CONF_GATEWAY_API_KEY}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: SparkControlConfigEntry
) -> dict[str, Any]:
    """Entry data and options, the last polls, the catalog and the last swap."""
    runtime = entry.runtime_data
    status = runtime.status.data
    metrics = runtime.metrics.data
    progress = runtime.swap.progress
    return {
        "entry": {
            "title": entry.title,
            "data": async_redact_data(dict(entry.data), TO_REDACT),
            "options": dict(entry.options),
        },
        "status": asdict(status) if status is not None else None,
        "metrics": {
            "vllm": asdict(metrics.vllm) if metrics and metrics.vllm else None,
            "gpus": {host: [asdict(gpu) for gpu in gpus] for host, gpus in metrics.gpus.items()}
            if metrics
            else {},
        },
        "catalog": runtime.catalog.catalog.to_dict(),
        "catalog_keys": runtime.catalog.catalog.keys(),
        "swap": {
            "status": progress.status,
            "model": progress.model,
            "elapsed": round(progress.elapsed, 1),
            "last_line": progress.last_line,
        }
        if progress is not None
        else None,
    }
