"""Actions of the operations: download a model, cancel it, remove a (partial) download,
remove the speech container."""

from __future__ import annotations

import voluptuous as vol
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv

from .actions import ATTR_CLUSTER, ATTR_REPO_ID, ATTR_WAIT, async_get_cluster_entry
from .const import DOMAIN
from .coordinator import SparkControlConfigEntry
from .download_control import DOWNLOAD_TARGETS, DownloadTarget
from .operations import OperationsData

ATTR_TARGET = "target"
ACTION_DOWNLOAD_MODEL = "download_model"
ACTION_CANCEL_DOWNLOAD = "cancel_download"
ACTION_REMOVE_DOWNLOAD = "remove_download"
ACTION_REMOVE_SPEECH_CONTAINER = "remove_speech_container"

# Repo id and target pass untyped: they are checked below into translated errors.
DOWNLOAD_MODEL_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_CLUSTER): cv.string,
        vol.Required(ATTR_REPO_ID): cv.string,
        vol.Optional(ATTR_TARGET, default="head"): cv.string,
        vol.Optional(ATTR_WAIT, default=False): cv.boolean,
    }
)
CLUSTER_ONLY_SCHEMA = vol.Schema({vol.Required(ATTR_CLUSTER): cv.string})
REMOVE_DOWNLOAD_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_CLUSTER): cv.string,
        vol.Required(ATTR_REPO_ID): cv.string,
        vol.Optional(ATTR_TARGET, default="head"): cv.string,
    }
)


def _operations(entry: SparkControlConfigEntry) -> OperationsData:
    operations = entry.runtime_data.operations
    assert operations is not None  # set up with the entry, before any action can name it
    return operations


def _target(call: ServiceCall) -> DownloadTarget:
    target = call.data[ATTR_TARGET]
    for known in DOWNLOAD_TARGETS:
        if target == known:
            return known
    raise ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="invalid_target",
        translation_placeholders={"target": str(target)},
    )


async def _download_model(call: ServiceCall) -> ServiceResponse:
    entry = async_get_cluster_entry(call.hass, call)
    downloads = _operations(entry).downloads
    task = downloads.async_start(call.data[ATTR_REPO_ID], _target(call))
    if not call.data[ATTR_WAIT]:
        state = downloads.data
        return {"repo_id": state.repo_id, "status": state.status, "nodes": list(state.nodes)}
    await task
    state = downloads.data
    if state.status != "finished":
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="download_failed",
            translation_placeholders={"repo_id": state.repo_id or "", "error": state.error or ""},
        )
    progress = state.progress
    return {
        "repo_id": state.repo_id,
        "status": state.status,
        "nodes": list(state.nodes),
        "bytes": progress.total if progress is not None else 0,
    }


async def _cancel_download(call: ServiceCall) -> None:
    entry = async_get_cluster_entry(call.hass, call)
    _operations(entry).downloads.cancel()


async def _remove_download(call: ServiceCall) -> None:
    entry = async_get_cluster_entry(call.hass, call)
    await _operations(entry).downloads.async_remove(call.data[ATTR_REPO_ID], _target(call))


async def _remove_speech_container(call: ServiceCall) -> None:
    entry = async_get_cluster_entry(call.hass, call)
    await _operations(entry).speech.async_remove()


@callback
def async_setup_operations_services(hass: HomeAssistant) -> None:
    """Register the download actions (called from `async_setup_services`)."""
    hass.services.async_register(
        DOMAIN,
        ACTION_DOWNLOAD_MODEL,
        _download_model,
        schema=DOWNLOAD_MODEL_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN, ACTION_CANCEL_DOWNLOAD, _cancel_download, schema=CLUSTER_ONLY_SCHEMA
    )
    hass.services.async_register(
        DOMAIN, ACTION_REMOVE_DOWNLOAD, _remove_download, schema=REMOVE_DOWNLOAD_SCHEMA
    )
    hass.services.async_register(
        DOMAIN,
        ACTION_REMOVE_SPEECH_CONTAINER,
        _remove_speech_container,
        schema=CLUSTER_ONLY_SCHEMA,
    )
