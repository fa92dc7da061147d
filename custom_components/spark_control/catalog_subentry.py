"""The model catalog in the UI: one config subentry per model the user added or adjusted.

*Add model* offers a new model (every setting, extra vLLM arguments from a fixed list) or an
adjustment of a bundled one (its tunables); *Reconfigure* on a model shows its current settings
for editing; deleting the subentry removes a user model or returns a bundled one to its shipped
settings. The subentries are the catalog's store (`catalog_store.py`); nothing is registered
until a form validates and the model's weights are on its nodes or the user chose to add it
without them (the download steps: `catalog_download.py`).
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.config_entries import (
    ConfigEntryState,
    ConfigSubentryFlow,
    SubentryFlowResult,
)
from homeassistant.helpers import selector

from .catalog_download import CatalogDownloadSteps, PendingModel, WeightsCheckFailed
from .catalog_store import SUBENTRY_MODEL, CatalogStore
from .coordinator import SparkControlConfigEntry
from .sparklib.catalog import (
    EXTRA_ARGS,
    MAX_MODEL_LEN_RANGE,
    MODES,
    TENSOR_PARALLEL_RANGE,
    Catalog,
    ModelEntry,
    ModelOptions,
    slugify,
)
from .sparklib.errors import InvalidInput

_TUNABLES = (
    "max_model_len",
    "gpu_memory_utilization",
    "fastsafetensors",
    "prefix_caching",
    "fp8_kv_cache",
)


def tunable_fields() -> dict[vol.Marker, Any]:
    """The form fields of a model's tunables (shared with the downloaded-model fix flow)."""
    return {
        vol.Required("max_model_len"): selector.NumberSelector(
            selector.NumberSelectorConfig(
                min=MAX_MODEL_LEN_RANGE[0],
                max=MAX_MODEL_LEN_RANGE[1],
                step=256,
                mode=selector.NumberSelectorMode.BOX,
            )
        ),
        vol.Required("gpu_memory_utilization"): selector.NumberSelector(
            selector.NumberSelectorConfig(
                min=0.05, max=1.0, step=0.01, mode=selector.NumberSelectorMode.BOX
            )
        ),
        vol.Required("fastsafetensors"): selector.BooleanSelector(),
        vol.Required("prefix_caching"): selector.BooleanSelector(),
        vol.Required("fp8_kv_cache"): selector.BooleanSelector(),
    }


def _model_schema(*, new: bool) -> vol.Schema:
    fields: dict[vol.Marker, Any] = {vol.Required("name"): selector.TextSelector()}
    if new:
        fields[vol.Required("repo_id")] = selector.TextSelector()
    fields[vol.Required("mode")] = selector.SelectSelector(
        selector.SelectSelectorConfig(options=list(MODES), translation_key="mode")
    )
    fields[vol.Required("tensor_parallel")] = selector.NumberSelector(
        selector.NumberSelectorConfig(
            min=TENSOR_PARALLEL_RANGE[0],
            max=TENSOR_PARALLEL_RANGE[1],
            step=1,
            mode=selector.NumberSelectorMode.BOX,
        )
    )
    fields.update(tunable_fields())
    fields[vol.Optional("extra_args")] = selector.SelectSelector(
        selector.SelectSelectorConfig(options=list(EXTRA_ARGS), multiple=True)
    )
    return vol.Schema(fields)


def _entry_values(model: ModelEntry) -> dict[str, Any]:
    """A model's settings as the forms show them."""
    values = model.to_dict()
    return {
        key: values[key]
        for key in ("name", "repo_id", "mode", "tensor_parallel", *_TUNABLES, "extra_args")
    }


def _build(user_input: dict[str, Any], key: str, repo_id: str) -> ModelEntry:
    """A ModelEntry from a submitted form; InvalidInput names the bad field."""
    return ModelEntry(
        key=key,
        name=str(user_input["name"]).strip(),
        repo_id=repo_id,
        mode=user_input["mode"],
        tensor_parallel=int(user_input["tensor_parallel"]),
        max_model_len=int(user_input["max_model_len"]),
        gpu_memory_utilization=float(user_input["gpu_memory_utilization"]),
        fastsafetensors=bool(user_input["fastsafetensors"]),
        prefix_caching=bool(user_input["prefix_caching"]),
        fp8_kv_cache=bool(user_input["fp8_kv_cache"]),
        extra_args=tuple(user_input.get("extra_args") or ()),
    )


def _changed_options(bundled: ModelEntry, user_input: dict[str, Any]) -> dict[str, Any]:
    """The tunables that differ from the bundled model's (the overrides to store)."""
    options = ModelOptions(
        max_model_len=int(user_input["max_model_len"]),
        gpu_memory_utilization=float(user_input["gpu_memory_utilization"]),
        fastsafetensors=bool(user_input["fastsafetensors"]),
        prefix_caching=bool(user_input["prefix_caching"]),
        fp8_kv_cache=bool(user_input["fp8_kv_cache"]),
    ).to_dict()
    shipped = bundled.to_dict()
    return {name: value for name, value in options.items() if shipped[name] != value}


class ModelSubentryFlow(CatalogDownloadSteps):
    """Add, adjust or edit one catalog model (adding one whose weights are missing downloads
    them first: `catalog_download.py`)."""

    _bundled_key = ""  # the bundled model being adjusted (bundled_model → bundled_options)

    def _store(self) -> CatalogStore | None:
        entry: SparkControlConfigEntry = self._get_entry()
        if entry.state is not ConfigEntryState.LOADED:
            return None
        return entry.runtime_data.catalog

    def _trial(self, store: CatalogStore) -> Catalog:
        """A copy of the live catalog to validate a change against."""
        return Catalog.from_dict(store.catalog.to_dict(), store.bundled)

    def _form(
        self,
        step_id: str,
        schema: vol.Schema,
        values: dict[str, Any],
        errors: dict[str, str],
        placeholders: dict[str, str],
    ) -> SubentryFlowResult:
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(schema, values),
            errors=errors,
            description_placeholders={"error": "", **placeholders},
        )

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """A new model, or an adjustment of a bundled one."""
        if self._store() is None:
            return self.async_abort(reason="cluster_not_loaded")
        return self.async_show_menu(step_id="user", menu_options=["new_model", "bundled_model"])

    async def async_step_new_model(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        store = self._store()
        if store is None:
            return self.async_abort(reason="cluster_not_loaded")
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            try:
                trial = self._trial(store)
                model = _build(user_input, _key_for(user_input), str(user_input["repo_id"]))
                trial.add(
                    model.name,
                    model.repo_id,
                    model.mode,
                    key=model.key,
                    tensor_parallel=model.tensor_parallel,
                    options=ModelOptions(**{name: getattr(model, name) for name in _TUNABLES}),
                    extra_args=model.extra_args,
                )
            except InvalidInput as error:
                errors[_field(error)] = "invalid_model"
                placeholders["error"] = str(error)
            else:
                pending = PendingModel.of(model, {"model": model.to_dict(), "options": {}})
                try:
                    return await self.async_weights_step(pending)
                except WeightsCheckFailed as failed:
                    errors["repo_id"] = "weights_check_failed"
                    placeholders["error"] = failed.reason
        defaults = user_input or {
            "mode": "solo",
            "tensor_parallel": 1,
            "max_model_len": 32768,
            "gpu_memory_utilization": 0.85,
            "fastsafetensors": False,
            "prefix_caching": True,
            "fp8_kv_cache": False,
            "extra_args": [],
        }
        return self._form("new_model", _model_schema(new=True), defaults, errors, placeholders)

    async def async_step_bundled_model(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Pick the bundled model to adjust (those not adjusted yet)."""
        store = self._store()
        if store is None:
            return self.async_abort(reason="cluster_not_loaded")
        taken = {sub.unique_id for sub in self._get_entry().subentries.values()}
        choices = [model for model in store.bundled if model.key not in taken]
        if not choices:
            return self.async_abort(reason="no_bundled_left")
        if user_input is not None:
            self._bundled_key = str(user_input["model"])
            return await self.async_step_bundled_options()
        schema = vol.Schema(
            {
                vol.Required("model"): selector.SelectSelector(
                    selector.SelectSelectorConfig(
                        options=[
                            selector.SelectOptionDict(value=model.key, label=model.name)
                            for model in choices
                        ]
                    )
                )
            }
        )
        return self.async_show_form(step_id="bundled_model", data_schema=schema)

    async def async_step_bundled_options(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        store = self._store()
        if store is None:
            return self.async_abort(reason="cluster_not_loaded")
        bundled = next(model for model in store.bundled if model.key == self._bundled_key)
        errors: dict[str, str] = {}
        placeholders = {"model": bundled.name, "error": ""}
        if user_input is not None:
            try:
                options = _changed_options(bundled, user_input)
                bundled.with_options(ModelOptions.from_dict(options))
            except InvalidInput as error:
                errors[_field(error)] = "invalid_model"
                placeholders["error"] = str(error)
            else:
                try:
                    return await self.async_weights_step(
                        PendingModel.of(bundled, {"options": options})
                    )
                except WeightsCheckFailed as failed:
                    errors["base"] = "weights_check_failed"
                    placeholders["error"] = failed.reason
        values = user_input or _entry_values(bundled)
        return self._form(
            "bundled_options", vol.Schema(tunable_fields()), values, errors, placeholders
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Edit a model: all settings of your own, the tunables of a bundled one."""
        store = self._store()
        if store is None:
            return self.async_abort(reason="cluster_not_loaded")
        subentry = self._get_reconfigure_subentry()
        key = str(subentry.unique_id)
        current = store.catalog.get(key)
        own = "model" in subentry.data
        errors: dict[str, str] = {}
        placeholders = {"model": current.name, "repo_id": current.repo_id, "error": ""}
        if user_input is not None:
            try:
                if own:
                    model = _build(user_input, key, current.repo_id)
                    self._trial(store).replace_user_model(model)
                    data: dict[str, Any] = {"model": model.to_dict(), "options": {}}
                    title = model.name
                else:
                    bundled = next(model for model in store.bundled if model.key == key)
                    options = _changed_options(bundled, user_input)
                    bundled.with_options(ModelOptions.from_dict(options))
                    data, title = {"options": options}, bundled.name
            except InvalidInput as error:
                errors[_field(error)] = "invalid_model"
                placeholders["error"] = str(error)
            else:
                return self.async_update_and_abort(
                    self._get_entry(), subentry, title=title, data=data
                )
        schema = _model_schema(new=False) if own else vol.Schema(tunable_fields())
        values = user_input or _entry_values(current)
        return self._form("reconfigure", schema, values, errors, placeholders)


def _key_for(user_input: dict[str, Any]) -> str:
    """The catalog key a new model gets: derived from its name."""
    return slugify(str(user_input["name"]))


def _field(error: InvalidInput) -> str:
    """The form field an error belongs to, or the form as a whole."""
    fields = ("name", "repo_id", "mode", "tensor_parallel", *_TUNABLES, "extra_args")
    return error.field if error.field in fields else "base"


SUBENTRY_FLOWS: dict[str, type[ConfigSubentryFlow]] = {SUBENTRY_MODEL: ModelSubentryFlow}
