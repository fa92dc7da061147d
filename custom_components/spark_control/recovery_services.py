"""The `run_deep_check` action: probe services now and answer with what was found and done."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import voluptuous as vol
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.translation import async_get_translations

from .actions import ATTR_CLUSTER, ATTR_SERVICE, async_get_cluster_entry
from .const import DOMAIN, SERVICE_RUN_DEEP_CHECK, SERVICE_VLLM, SERVICES

if TYPE_CHECKING:
    from .coordinator import SparkControlConfigEntry

RUN_DEEP_CHECK_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_CLUSTER): cv.string,
        vol.Optional(ATTR_SERVICE): vol.All(cv.ensure_list, [vol.In(SERVICES)]),
    }
)


async def _run_deep_check(call: ServiceCall) -> ServiceResponse:
    entry = async_get_cluster_entry(call.hass, call)
    recovery = entry.runtime_data.recovery
    services = list(dict.fromkeys(call.data.get(ATTR_SERVICE) or SERVICES))
    # vLLM is down on purpose while a swap or start loads it: say so instead of probing it
    # (its 503 is no failure, and a probe would only wait).
    under_way = await _vllm_under_way(call.hass, entry) if SERVICE_VLLM in services else None
    probed = [service for service in services if not (service == SERVICE_VLLM and under_way)]
    outcomes = await recovery.async_run_deep_check(probed, source="manual")
    answers = {service: outcome.as_dict() for service, outcome in outcomes.items()}
    if under_way is not None:
        answers[SERVICE_VLLM] = under_way
    return {
        "cluster": entry.title,
        "services": {service: answers[service] for service in services},
    }


async def _vllm_under_way(
    hass: HomeAssistant, entry: SparkControlConfigEntry
) -> dict[str, Any] | None:
    """The deep check's answer for vLLM while a swap or start runs (None while none does):
    `health` `starting` or `swapping`, the model, the swap's phase, a translated `detail`."""
    state = entry.runtime_data.swap.data
    if state.target is None:
        return None
    kind = "starting" if state.starting else "swapping"
    progress = (
        state.progress
        if state.progress is not None and state.progress.model == state.target
        else None
    )
    status = progress.status if progress is not None else "stopping"
    elapsed = round(progress.elapsed) if progress is not None else 0
    strings = await async_get_translations(hass, hass.config.language, "exceptions", {DOMAIN})
    template = strings[f"component.{DOMAIN}.exceptions.deep_check_vllm_{kind}.message"]
    catalog = entry.runtime_data.catalog.catalog
    return {
        "health": kind,
        "detail": template.format(
            model=catalog.label(state.target), status=status, elapsed=elapsed
        ),
        "model": state.target,
        "swap_status": status,
        "elapsed_ms": 0,
        "first_probe": None,
        "restarts": 0,
        "suppressed": False,
        "restart_error": None,
    }


@callback
def async_setup_recovery_services(hass: HomeAssistant) -> None:
    """Register `run_deep_check` (called from `async_setup_services`)."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_RUN_DEEP_CHECK,
        _run_deep_check,
        schema=RUN_DEEP_CHECK_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
