"""Actions of Spark Control: swaps, service control and the model catalog."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import voluptuous as vol
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv

from .actions import (
    ATTR_CLUSTER,
    ATTR_MODEL,
    ATTR_REPO_ID,
    ATTR_SERVICE,
    ATTR_WAIT,
    async_get_cluster_entry,
)
from .const import DOMAIN, SERVICES
from .coordinator import SparkControlConfigEntry
from .errors import spark_errors
from .operations_services import async_setup_operations_services
from .recovery_services import async_setup_recovery_services
from .service_control import async_service_action
from .sparklib.catalog import ModelOptions
from .sparklib.commands import DockerAction
from .transcribe import async_setup_transcribe_services

ATTR_NAME = "name"
ATTR_MODE = "mode"
ATTR_MAX_MODEL_LEN = "max_model_len"
ATTR_GPU_MEMORY_UTILIZATION = "gpu_memory_utilization"
ATTR_FASTSAFETENSORS = "fastsafetensors"
ATTR_PREFIX_CACHING = "prefix_caching"
ATTR_FP8_KV_CACHE = "fp8_kv_cache"

ACTION_SWAP_MODEL = "swap_model"
ACTION_START_SERVICE = "start_service"
ACTION_STOP_SERVICE = "stop_service"
ACTION_RESTART_SERVICE = "restart_service"
ACTION_SET_MODEL_OPTIONS = "set_model_options"
ACTION_ADD_MODEL = "add_model"
ACTION_REMOVE_MODEL = "remove_model"

# Values pass through untyped: sparklib's ModelOptions checks them and its InvalidInput
# becomes a translated error naming the field (a schema error would not be translated).
_OPTION_FIELDS: dict[vol.Marker, Any] = {
    vol.Optional(name): object
    for name in (
        ATTR_MAX_MODEL_LEN,
        ATTR_GPU_MEMORY_UTILIZATION,
        ATTR_FASTSAFETENSORS,
        ATTR_PREFIX_CACHING,
        ATTR_FP8_KV_CACHE,
    )
}
_OPTION_NAMES = tuple(str(key) for key in _OPTION_FIELDS)

_CLUSTER: dict[vol.Marker, Any] = {vol.Required(ATTR_CLUSTER): cv.string}
SWAP_MODEL_SCHEMA = vol.Schema(
    {
        **_CLUSTER,
        vol.Required(ATTR_MODEL): cv.string,
        vol.Optional(ATTR_WAIT, default=False): cv.boolean,
    }
)
SERVICE_ACTION_SCHEMA = vol.Schema({**_CLUSTER, vol.Required(ATTR_SERVICE): cv.string})
SET_MODEL_OPTIONS_SCHEMA = vol.Schema(
    {**_CLUSTER, vol.Required(ATTR_MODEL): cv.string, **_OPTION_FIELDS}
)
ADD_MODEL_SCHEMA = vol.Schema(
    {
        **_CLUSTER,
        vol.Required(ATTR_NAME): cv.string,
        vol.Required(ATTR_REPO_ID): cv.string,
        vol.Optional(ATTR_MODE, default="solo"): cv.string,
        **_OPTION_FIELDS,
    }
)
REMOVE_MODEL_SCHEMA = vol.Schema({**_CLUSTER, vol.Required(ATTR_MODEL): cv.string})


def _options(call: ServiceCall) -> ModelOptions:
    """The model options given in the call; InvalidInput for a bad value."""
    values = {name: call.data[name] for name in _OPTION_NAMES if name in call.data}
    length = values.get(ATTR_MAX_MODEL_LEN)
    if isinstance(length, float) and length.is_integer():
        values[ATTR_MAX_MODEL_LEN] = int(length)  # number selectors send floats
    return ModelOptions(**values)


async def _guarded[T](
    hass: HomeAssistant, entry: SparkControlConfigEntry, work: Callable[[], Awaitable[T]]
) -> T:
    """Run library work under the error policy."""
    with spark_errors(hass, entry):
        return await work()


def _known_model(entry: SparkControlConfigEntry, model: str) -> str:
    """The catalog key asked for; a translated error listing the valid ones otherwise."""
    catalog = entry.runtime_data.catalog.catalog
    if model not in catalog:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="unknown_model",
            translation_placeholders={
                "model": model,
                "cluster": entry.title,
                "models": ", ".join(f"{m.key} ({m.name})" for m in catalog.models),
            },
        )
    return model


async def _swap_model(call: ServiceCall) -> ServiceResponse:
    entry = async_get_cluster_entry(call.hass, call)
    swap = entry.runtime_data.swap
    model = _known_model(entry, call.data[ATTR_MODEL])
    if not call.data[ATTR_WAIT]:
        swap.async_start(model)
        return {"model": model, "status": "started"}
    result = await swap.async_swap(model)
    return {"model": result.model, "status": "ready", "duration": round(result.duration, 3)}


def _service_action(action: DockerAction) -> Callable[[ServiceCall], Coroutine[Any, Any, None]]:
    async def handle(call: ServiceCall) -> None:
        entry = async_get_cluster_entry(call.hass, call)
        service = call.data[ATTR_SERVICE]
        if service not in SERVICES:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="invalid_service",
                translation_placeholders={"service": service, "services": ", ".join(SERVICES)},
            )
        await _guarded(call.hass, entry, lambda: async_service_action(entry, service, action))

    return handle


async def _set_model_options(call: ServiceCall) -> None:
    entry = async_get_cluster_entry(call.hass, call)
    store = entry.runtime_data.catalog

    async def work() -> None:
        store.catalog.set_options(call.data[ATTR_MODEL], _options(call))
        await store.async_changed()

    await _guarded(call.hass, entry, work)


async def _add_model(call: ServiceCall) -> ServiceResponse:
    entry = async_get_cluster_entry(call.hass, call)
    store = entry.runtime_data.catalog
    mode = call.data[ATTR_MODE]
    if mode not in ("solo", "cluster"):
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_mode",
            translation_placeholders={"mode": mode},
        )

    async def work() -> dict[str, Any]:
        added = store.catalog.add(
            call.data[ATTR_NAME], call.data[ATTR_REPO_ID], mode, options=_options(call)
        )
        await store.async_changed()
        return added.to_dict()

    return await _guarded(call.hass, entry, work)


async def _remove_model(call: ServiceCall) -> None:
    entry = async_get_cluster_entry(call.hass, call)
    store = entry.runtime_data.catalog

    async def work() -> None:
        store.catalog.remove(call.data[ATTR_MODEL])
        await store.async_changed()

    await _guarded(call.hass, entry, work)


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register every action of the integration (once, in async_setup)."""
    hass.services.async_register(
        DOMAIN,
        ACTION_SWAP_MODEL,
        _swap_model,
        schema=SWAP_MODEL_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    docker_actions: tuple[tuple[str, DockerAction], ...] = (
        (ACTION_START_SERVICE, "start"),
        (ACTION_STOP_SERVICE, "stop"),
        (ACTION_RESTART_SERVICE, "restart"),
    )
    for name, action in docker_actions:
        hass.services.async_register(
            DOMAIN, name, _service_action(action), schema=SERVICE_ACTION_SCHEMA
        )
    hass.services.async_register(
        DOMAIN, ACTION_SET_MODEL_OPTIONS, _set_model_options, schema=SET_MODEL_OPTIONS_SCHEMA
    )
    hass.services.async_register(
        DOMAIN,
        ACTION_ADD_MODEL,
        _add_model,
        schema=ADD_MODEL_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN, ACTION_REMOVE_MODEL, _remove_model, schema=REMOVE_MODEL_SCHEMA
    )
    # The other groups live next to what they drive: recovery's run_deep_check, the add-on's
    # transcribe_with_speakers, model downloads.
    async_setup_recovery_services(hass)
    async_setup_transcribe_services(hass)
    async_setup_operations_services(hass)
