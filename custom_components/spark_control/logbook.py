"""Describe Spark Control's swap, recovery and health events in the logbook (the connectivity
log)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from homeassistant.components.logbook.const import (
    LOGBOOK_ENTRY_ENTITY_ID,
    LOGBOOK_ENTRY_MESSAGE,
    LOGBOOK_ENTRY_NAME,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import Event, HomeAssistant, callback

from .const import (
    DOMAIN,
    EVENT_HEALTH_REPORT,
    EVENT_RESTART_FAILED,
    EVENT_RESTART_SUPPRESSED,
    EVENT_SERVICE_RECOVERED,
    EVENT_SERVICE_RESTARTED,
    EVENT_SWAP_FAILED,
    EVENT_SWAP_FELL_BACK,
    EVENT_SWAP_FINISHED,
    EVENT_SWAP_STARTED,
    EVENT_WEDGE_DETECTED,
)

SERVICE_NAMES = {"vllm": "vLLM", "parakeet": "Parakeet", "magpie": "Magpie"}

type Describer = Callable[[Mapping[str, Any]], str]


def _service(data: Mapping[str, Any]) -> str:
    # Swap events carry no service: a swap is always vLLM's.
    service = str(data.get("service", "vllm"))
    name = SERVICE_NAMES.get(service, service)
    cluster = data.get("cluster")
    return f"{cluster} {name}" if cluster else name


# Sources of vLLM's own watch (vllm_watch.py), in words.
_SOURCE_NAMES = {
    "frozen_generation": "the freeze watch",
    "container_log": "vLLM's log",
    "vllm_probe": "the vLLM probe",
}


def _source(data: Mapping[str, Any]) -> str:
    source = data.get("source")
    if not source or source == "unknown":
        return ""
    return f" (reported by {_SOURCE_NAMES.get(str(source), source)})"


def _wedge_detected(data: Mapping[str, Any]) -> str:
    return f"is wedged: {data.get('error') or 'unknown error'}{_source(data)}"


def _service_restarted(data: Mapping[str, Any]) -> str:
    return (
        f"was restarted automatically (attempt {data.get('attempt')}, "
        f"{data.get('budget_left')} restart(s) left in the window)"
    )


def _restart_suppressed(data: Mapping[str, Any]) -> str:
    return (
        f"is wedged but was not restarted: {data.get('restarts_in_window')} automatic restarts "
        f"already in the last {data.get('window_minutes')} minutes; restart it manually"
    )


def _restart_failed(data: Mapping[str, Any]) -> str:
    return f"could not be restarted: {data.get('error') or 'unknown error'}"


def _service_recovered(data: Mapping[str, Any]) -> str:
    return f"recovered after {float(data.get('downtime') or 0):.1f} s of downtime"


def _health_report(data: Mapping[str, Any]) -> str:
    latency = f" in {data['ms']} ms" if isinstance(data.get("ms"), int | float) else ""
    by = f" by {data['source']}" if data.get("source") else ""
    if data.get("ok"):
        return f"was reported working{by}{latency}"
    error = f": {data['error']}" if data.get("error") else ""
    return f"was reported failing{by}{latency}{error}"


def _seconds(data: Mapping[str, Any]) -> str:
    return f"{float(data.get('duration') or 0):.1f} s"


def _swap_started(data: Mapping[str, Any]) -> str:
    return f"started loading {data.get('model')}"


def _swap_finished(data: Mapping[str, Any]) -> str:
    return f"now serves {data.get('model')} (swap took {_seconds(data)})"


def _swap_failed(data: Mapping[str, Any]) -> str:
    return f"failed to load {data.get('model')} after {_seconds(data)}: {data.get('reason')}"


def _swap_fell_back(data: Mapping[str, Any]) -> str:
    return (
        f"serves {data.get('fallback_model')} again after the swap to {data.get('model')} "
        f"failed: {data.get('reason')}"
    )


DESCRIBERS: dict[str, Describer] = {
    EVENT_SWAP_STARTED: _swap_started,
    EVENT_SWAP_FINISHED: _swap_finished,
    EVENT_SWAP_FAILED: _swap_failed,
    EVENT_SWAP_FELL_BACK: _swap_fell_back,
    EVENT_WEDGE_DETECTED: _wedge_detected,
    EVENT_SERVICE_RESTARTED: _service_restarted,
    EVENT_RESTART_SUPPRESSED: _restart_suppressed,
    EVENT_RESTART_FAILED: _restart_failed,
    EVENT_SERVICE_RECOVERED: _service_recovered,
    EVENT_HEALTH_REPORT: _health_report,
}


MODEL_FIELDS = ("model", "fallback_model")


def _with_model_names(hass: HomeAssistant, data: Mapping[str, Any]) -> Mapping[str, Any]:
    """The event's data with catalog keys replaced by the models' display names (what the
    model select shows), as far as the cluster is loaded and still has those models."""
    entry = hass.config_entries.async_get_entry(str(data.get("entry_id")))
    if entry is None or entry.domain != DOMAIN or entry.state is not ConfigEntryState.LOADED:
        return data
    catalog = entry.runtime_data.catalog.catalog
    names = {
        field: catalog.get(key).name
        for field in MODEL_FIELDS
        if isinstance(key := data.get(field), str) and key in catalog
    }
    return {**data, **names} if names else data


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, str]]], None],
) -> None:
    """Register a description for each swap, recovery and health event."""

    def make(describe: Describer) -> Callable[[Event], dict[str, str]]:
        @callback
        def describe_event(event: Event) -> dict[str, str]:
            described = {
                LOGBOOK_ENTRY_NAME: _service(event.data),
                LOGBOOK_ENTRY_MESSAGE: describe(_with_model_names(hass, event.data)),
            }
            # The entity the event is filed under (the model select, a Wedged sensor): the
            # frontend links the line to it.
            if isinstance(entity_id := event.data.get("entity_id"), str):
                described[LOGBOOK_ENTRY_ENTITY_ID] = entity_id
            return described

        return describe_event

    for event_type, describe in DESCRIBERS.items():
        async_describe_event(DOMAIN, event_type, make(describe))
