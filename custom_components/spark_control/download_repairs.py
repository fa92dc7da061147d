"""Fix flows of the download issues: add a downloaded model to the catalog, or resume /
remove a failed download."""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant import data_entry_flow
from homeassistant.components.repairs import RepairsFlow
from homeassistant.config_entries import ConfigEntryState
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import selector

from .catalog_subentry import tunable_fields
from .coordinator import SparkControlConfigEntry
from .download_control import DownloadTarget
from .sparklib.catalog import (
    MODES,
    ModelOptions,
    slugify,
)
from .sparklib.errors import InvalidInput

_FORM_FIELDS = (
    "name",
    "key",
    "mode",
    "max_model_len",
    "gpu_memory_utilization",
    "fastsafetensors",
    "prefix_caching",
    "fp8_kv_cache",
)


class _DownloadIssueFlow(RepairsFlow):
    """Shared: find the loaded cluster entry the issue belongs to."""

    def __init__(self, entry_id: str, repo_id: str, target: DownloadTarget) -> None:
        self._entry_id = entry_id
        self._repo_id = repo_id
        self._target: DownloadTarget = target

    def _entry(self) -> SparkControlConfigEntry | None:
        entry: SparkControlConfigEntry | None = self.hass.config_entries.async_get_entry(
            self._entry_id
        )
        if entry is None or entry.state is not ConfigEntryState.LOADED:
            return None
        return entry


class AddDownloadedModelFlow(_DownloadIssueFlow):
    """The catalog form, pre-filled for the downloaded repo; nothing is added until submit."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> data_entry_flow.FlowResult:
        return await self.async_step_add_model()

    async def async_step_add_model(
        self, user_input: dict[str, Any] | None = None
    ) -> data_entry_flow.FlowResult:
        entry = self._entry()
        if entry is None:
            return self.async_abort(reason="cluster_not_loaded")
        store = entry.runtime_data.catalog
        errors: dict[str, str] = {}
        placeholders = {"repo_id": self._repo_id, "cluster": entry.title, "error": ""}
        if user_input is not None:
            try:
                options = ModelOptions(
                    max_model_len=int(user_input["max_model_len"]),
                    gpu_memory_utilization=float(user_input["gpu_memory_utilization"]),
                    fastsafetensors=user_input["fastsafetensors"],
                    prefix_caching=user_input["prefix_caching"],
                    fp8_kv_cache=user_input["fp8_kv_cache"],
                )
                store.catalog.add(
                    user_input["name"],
                    self._repo_id,
                    user_input["mode"],
                    key=user_input["key"],
                    options=options,
                )
            except InvalidInput as error:
                field = error.field if error.field in _FORM_FIELDS else "base"
                errors[field] = "invalid_model"
                placeholders["error"] = str(error)
            else:
                await store.async_changed()
                return self.async_create_entry(data={})
        name = self._repo_id.split("/", 1)[1]
        defaults = user_input or {
            "name": name,
            "key": slugify(name),
            "mode": "cluster" if self._target == "all" else "solo",
            "max_model_len": 32768,
            "gpu_memory_utilization": 0.85,
            "fastsafetensors": False,
            "prefix_caching": True,
            "fp8_kv_cache": False,
        }
        schema = vol.Schema(
            {
                vol.Required("name"): selector.TextSelector(),
                vol.Required("key"): selector.TextSelector(),
                vol.Required("mode"): selector.SelectSelector(
                    selector.SelectSelectorConfig(options=list(MODES), translation_key="mode")
                ),
                **tunable_fields(),
            }
        )
        return self.async_show_form(
            step_id="add_model",
            data_schema=self.add_suggested_values_to_schema(schema, defaults),
            errors=errors,
            description_placeholders=placeholders,
        )


class FailedDownloadFlow(_DownloadIssueFlow):
    """Resume the download (the hub client continues the partial files) or remove them."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> data_entry_flow.FlowResult:
        if self._entry() is None:
            return self.async_abort(reason="cluster_not_loaded")
        return self.async_show_menu(
            step_id="init",
            menu_options=["resume", "remove"],
            description_placeholders={"repo_id": self._repo_id},
        )

    async def async_step_resume(
        self, user_input: dict[str, Any] | None = None
    ) -> data_entry_flow.FlowResult:
        entry = self._entry()
        if entry is None or entry.runtime_data.operations is None:
            return self.async_abort(reason="cluster_not_loaded")
        try:
            entry.runtime_data.operations.downloads.async_start(self._repo_id, self._target)
        except HomeAssistantError:
            return self.async_abort(reason="download_in_progress")
        return self.async_create_entry(data={})

    async def async_step_remove(
        self, user_input: dict[str, Any] | None = None
    ) -> data_entry_flow.FlowResult:
        entry = self._entry()
        if entry is None or entry.runtime_data.operations is None:
            return self.async_abort(reason="cluster_not_loaded")
        try:
            await entry.runtime_data.operations.downloads.async_remove(self._repo_id, self._target)
        except HomeAssistantError:
            return self.async_abort(reason="remove_failed")
        return self.async_create_entry(data={})


def download_fix_flow(
    issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow | None:
    """The fix flow of a download issue, or None if the issue is not one of ours."""
    if data is None or not issue_id.startswith(("model_downloaded_", "download_failed_")):
        return None
    target: DownloadTarget = "all" if data.get("target") == "all" else "head"
    flow_class = (
        AddDownloadedModelFlow if issue_id.startswith("model_downloaded_") else FailedDownloadFlow
    )
    return flow_class(str(data["entry_id"]), str(data["repo_id"]), target)
