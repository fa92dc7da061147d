"""Describe Spark Control's swap, recovery and health events in the logbook (the connectivity
log), in Home Assistant's language and naming models as the model select does.

HA's logbook takes finished text from integrations (it has no translation keys of its own), so
each line is built from the integration's translations, the way the swap notifications are.
The sentences live in the `exceptions` category (`logbook_*` keys): the only translation
category of an integration whose strings are free text with placeholders.
"""

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
from homeassistant.helpers.translation import async_get_cached_translations

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
    EVENT_VLLM_EXITED,
    EVENT_VLLM_STOPPED,
    EVENT_WEDGE_DETECTED,
)
from .errors import async_swap_failure_reason

SERVICE_NAMES = {"vllm": "vLLM", "parakeet": "Parakeet", "magpie": "Magpie"}
# Who found a wedge, named in words by the translations: the add-on gateway's and the voice
# bridges' reports, the recovery's own checks (recovery.py) and vLLM's watches (vllm_watch.py,
# vllm_exit.py).
# Any other source is a client's own name for itself, shown as it is.
KNOWN_SOURCES = (
    "gateway",
    "wyoming",
    "manual",
    "periodic",
    "follow_up",
    "post_restart_probe",
    "frozen_generation",
    "container_log",
    "vllm_probe",
    "server_exited",
)
MODEL_FIELDS = ("model", "fallback_model")


class LogbookText:
    """The logbook's sentences in HA's language: `text("swap_started", model=...)`."""

    def __init__(self, strings: Mapping[str, str]) -> None:
        self._strings = strings

    @classmethod
    @callback
    def of(cls, hass: HomeAssistant) -> LogbookText:
        """The sentences HA loaded with the integration (English where a language lacks one)."""
        return cls(async_get_cached_translations(hass, hass.config.language, "exceptions", DOMAIN))

    def __call__(self, key: str, **placeholders: object) -> str:
        template = self._strings.get(f"component.{DOMAIN}.exceptions.logbook_{key}.message")
        if template is None:  # never with the shipped translations; the key beats a crash
            return key
        return template.format(**{name: str(value) for name, value in placeholders.items()})


type Describer = Callable[[Mapping[str, Any], LogbookText], str]


def _service(data: Mapping[str, Any]) -> str:
    # Swap events carry no service: a swap is always vLLM's.
    service = str(data.get("service", "vllm"))
    name = SERVICE_NAMES.get(service, service)
    cluster = data.get("cluster")
    return f"{cluster} {name}" if cluster else name


def _error(data: Mapping[str, Any], text: LogbookText, field: str = "error") -> str:
    return str(data.get(field) or text("unknown_error"))


def _seconds(value: Any) -> str:
    return f"{float(value or 0):.1f}"


def _wedge_detected(data: Mapping[str, Any], text: LogbookText) -> str:
    source = data.get("source")
    if not source or source == "unknown":
        return text("wedge_detected", error=_error(data, text))
    named = text(f"source_{source}") if source in KNOWN_SOURCES else source
    return text("wedge_detected_by", error=_error(data, text), source=named)


def _service_restarted(data: Mapping[str, Any], text: LogbookText) -> str:
    return text(
        "service_restarted", attempt=data.get("attempt"), budget_left=data.get("budget_left")
    )


def _restart_suppressed(data: Mapping[str, Any], text: LogbookText) -> str:
    return text(
        "restart_suppressed",
        restarts=data.get("restarts_in_window"),
        minutes=data.get("window_minutes"),
    )


def _restart_failed(data: Mapping[str, Any], text: LogbookText) -> str:
    return text("restart_failed", error=_error(data, text))


def _service_recovered(data: Mapping[str, Any], text: LogbookText) -> str:
    return text("service_recovered", downtime=_seconds(data.get("downtime")))


def _vllm_exited(data: Mapping[str, Any], text: LogbookText) -> str:
    model = data.get("model") or text("unknown_model")
    return text("vllm_exited" if data.get("relaunch") else "vllm_exited_kept_down", model=model)


def _vllm_stopped(data: Mapping[str, Any], text: LogbookText) -> str:
    if model := data.get("model"):
        return text("vllm_stopped", model=model)
    return text("vllm_stopped_idle")


def _health_report(data: Mapping[str, Any], text: LogbookText) -> str:
    # One whole sentence per combination of the optional fields, so a language can order them.
    ms = data.get("ms")
    timed = isinstance(ms, int | float) and not isinstance(ms, bool)
    key = "health_working" if data.get("ok") else "health_failing"
    key += ("_by" if data.get("source") else "") + ("_timed" if timed else "")
    return text(key, source=data.get("source"), ms=ms, error=_error(data, text))


def _swap_or_start(data: Mapping[str, Any], phase: str) -> str:
    """The sentence's key: a start or restart of vLLM is told as one, not as a swap."""
    return f"{'start' if data.get('starting') else 'swap'}_{phase}"


def _swap_started(data: Mapping[str, Any], text: LogbookText) -> str:
    return text(_swap_or_start(data, "started"), model=data.get("model"))


def _swap_finished(data: Mapping[str, Any], text: LogbookText) -> str:
    return text(
        _swap_or_start(data, "finished"),
        model=data.get("model"),
        duration=_seconds(data.get("duration")),
    )


def _swap_failed(data: Mapping[str, Any], text: LogbookText) -> str:
    return text(
        _swap_or_start(data, "failed"),
        model=data.get("model"),
        duration=_seconds(data.get("duration")),
        reason=_error(data, text, "reason"),
    )


def _swap_fell_back(data: Mapping[str, Any], text: LogbookText) -> str:
    return text(
        "swap_fell_back",
        model=data.get("model"),
        fallback_model=data.get("fallback_model"),
        reason=_error(data, text, "reason"),
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
    EVENT_VLLM_EXITED: _vllm_exited,
    EVENT_VLLM_STOPPED: _vllm_stopped,
    EVENT_HEALTH_REPORT: _health_report,
}


def _in_words(hass: HomeAssistant, data: Mapping[str, Any]) -> Mapping[str, Any]:
    """The event's data as the user knows it: a failed swap's reason in HA's language, and
    catalog keys replaced by the models' display names (what the model select shows), as far
    as the cluster is loaded and still has those models."""
    if "cause" in data:
        words = async_swap_failure_reason(hass, data["cause"], str(data.get("detail") or ""))
        data = {**data, "reason": words or data.get("reason")}
    entry = hass.config_entries.async_get_entry(str(data.get("entry_id")))
    if entry is None or entry.domain != DOMAIN or entry.state is not ConfigEntryState.LOADED:
        return data
    label = entry.runtime_data.catalog.catalog.label
    names = {field: label(key) for field in MODEL_FIELDS if isinstance(key := data.get(field), str)}
    return {**data, **names}


@callback
def async_describe(hass: HomeAssistant, event_type: str, data: Mapping[str, Any]) -> str:
    """The logbook line of one of our events, as the logbook shows it."""
    return DESCRIBERS[event_type](_in_words(hass, data), LogbookText.of(hass))


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, str]]], None],
) -> None:
    """Register a description for each swap, recovery and health event."""

    @callback
    def describe_event(event: Event) -> dict[str, str]:
        described = {
            LOGBOOK_ENTRY_NAME: _service(event.data),
            LOGBOOK_ENTRY_MESSAGE: async_describe(hass, str(event.event_type), event.data),
        }
        # The entity the event is filed under (the model select, a Wedged sensor): the
        # frontend links the line to it.
        if isinstance(entity_id := event.data.get("entity_id"), str):
            described[LOGBOOK_ENTRY_ENTITY_ID] = entity_id
        return described

    for event_type in DESCRIBERS:
        async_describe_event(DOMAIN, event_type, describe_event)
