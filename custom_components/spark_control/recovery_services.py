"""The `run_deep_check` action: probe services now and answer with what was found and done."""

from __future__ import annotations

import voluptuous as vol
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.helpers import config_validation as cv

from .actions import ATTR_CLUSTER, ATTR_SERVICE, async_get_cluster_entry
from .const import DOMAIN, SERVICE_RUN_DEEP_CHECK, SERVICES

RUN_DEEP_CHECK_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_CLUSTER): cv.string,
        vol.Optional(ATTR_SERVICE): vol.All(cv.ensure_list, [vol.In(SERVICES)]),
    }
)


async def _run_deep_check(call: ServiceCall) -> ServiceResponse:
    entry = async_get_cluster_entry(call.hass, call)
    recovery = entry.runtime_data.recovery
    services = call.data.get(ATTR_SERVICE) or list(SERVICES)
    outcomes = await recovery.async_run_deep_check(services, source="manual")
    return {
        "cluster": entry.title,
        "services": {service: outcome.as_dict() for service, outcome in outcomes.items()},
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
