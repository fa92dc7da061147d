"""The model catalog: bundled `models.yaml` + the user's models + per-model overrides.

Only the user's part (their models and overrides) is persisted (`to_dict`/`from_dict`);
the bundled list always comes from the file shipped with the integration, so an update
that improves a bundled entry reaches everyone who did not override it.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import voluptuous as vol
import yaml

from .errors import InvalidInput
from .validation import (
    validate_catalog_key,
    validate_fraction,
    validate_int,
    validate_port,
    validate_repo_id,
)

_LOGGER = logging.getLogger(__name__)

BUNDLED_MODELS_PATH = Path(__file__).parent.parent / "models.yaml"
STORAGE_VERSION = 1

type ModelMode = Literal["solo", "cluster"]
MODES: tuple[ModelMode, ...] = ("solo", "cluster")

MAX_MODEL_LEN_RANGE = (256, 1_048_576)
TENSOR_PARALLEL_RANGE = (1, 16)
DEFAULT_PORT = 8888

# Further `vllm serve` arguments a model may carry: a fixed list, so nothing typed by a user
# reaches the command line (each is one argv word; values are part of the word).
EXTRA_ARGS: tuple[str, ...] = (
    "--enforce-eager",
    "--trust-remote-code",
    "--enable-auto-tool-choice",
    "--tool-call-parser=hermes",
    "--reasoning-parser=qwen3",
    "--enable-chunked-prefill",
    "--async-scheduling",
    "--disable-log-requests",
)

_OPTION_FIELDS = (
    "max_model_len",
    "gpu_memory_utilization",
    "fastsafetensors",
    "prefix_caching",
    "fp8_kv_cache",
)

_ENTRY_SCHEMA = vol.Schema(
    {
        vol.Required("key"): str,
        vol.Required("name"): str,
        vol.Required("repo_id"): str,
        vol.Required("mode"): vol.In(MODES),
        vol.Optional("tensor_parallel"): int,
        vol.Optional("max_model_len", default=32768): int,
        vol.Optional("gpu_memory_utilization", default=0.85): vol.Coerce(float),
        vol.Optional("fastsafetensors", default=False): bool,
        vol.Optional("prefix_caching", default=True): bool,
        vol.Optional("fp8_kv_cache", default=False): bool,
        vol.Optional("port", default=DEFAULT_PORT): int,
        vol.Optional("extra_args", default=list): vol.All(
            [vol.In(EXTRA_ARGS)], vol.Unique(), vol.Coerce(tuple)
        ),
    }
)
_OPTIONS_SCHEMA = vol.Schema(
    {
        vol.Optional("max_model_len"): vol.Any(None, int),
        vol.Optional("gpu_memory_utilization"): vol.Any(None, vol.Coerce(float)),
        vol.Optional("fastsafetensors"): vol.Any(None, bool),
        vol.Optional("prefix_caching"): vol.Any(None, bool),
        vol.Optional("fp8_kv_cache"): vol.Any(None, bool),
    }
)


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """A model vLLM can serve, with the flags it is launched with. Validated on creation."""

    key: str
    name: str
    repo_id: str
    mode: ModelMode
    tensor_parallel: int
    max_model_len: int
    gpu_memory_utilization: float
    fastsafetensors: bool
    prefix_caching: bool
    fp8_kv_cache: bool
    port: int = DEFAULT_PORT
    extra_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        validate_catalog_key(self.key, "key")
        validate_repo_id(self.repo_id)
        _validate_name(self.name)
        if self.mode not in MODES:
            raise InvalidInput("mode", "must be 'solo' or 'cluster'")
        validate_int(self.tensor_parallel, "tensor_parallel", *TENSOR_PARALLEL_RANGE)
        if self.mode == "solo" and self.tensor_parallel != 1:
            raise InvalidInput("tensor_parallel", "a solo model runs with tensor parallel 1")
        validate_int(self.max_model_len, "max_model_len", *MAX_MODEL_LEN_RANGE)
        object.__setattr__(
            self, "gpu_memory_utilization", validate_fraction(self.gpu_memory_utilization)
        )
        for flag in ("fastsafetensors", "prefix_caching", "fp8_kv_cache"):
            if not isinstance(getattr(self, flag), bool):
                raise InvalidInput(flag, "must be true or false")
        validate_port(self.port)
        if not isinstance(self.extra_args, tuple) or any(
            arg not in EXTRA_ARGS for arg in self.extra_args
        ):
            raise InvalidInput("extra_args", f"each must be one of {', '.join(EXTRA_ARGS)}")
        if len(set(self.extra_args)) != len(self.extra_args):
            raise InvalidInput("extra_args", "an argument is listed twice")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelEntry:
        """Build from a YAML/storage mapping; InvalidInput on a bad shape or value."""
        try:
            clean = _ENTRY_SCHEMA(dict(data))
        except vol.Invalid as err:
            raise InvalidInput(".".join(map(str, err.path)) or "model", err.msg) from None
        clean.setdefault("tensor_parallel", 2 if clean["mode"] == "cluster" else 1)
        return cls(**clean)

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping (JSON/YAML safe)."""
        return dataclasses.asdict(self) | {"extra_args": list(self.extra_args)}

    def with_options(self, options: ModelOptions) -> ModelEntry:
        """This entry with the overrides that are set applied (validated)."""
        changes = {
            name: getattr(options, name)
            for name in _OPTION_FIELDS
            if getattr(options, name) is not None
        }
        return dataclasses.replace(self, **changes) if changes else self


@dataclass(frozen=True, slots=True)
class ModelOptions:
    """Per-model overrides; None leaves the catalog value alone."""

    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    fastsafetensors: bool | None = None
    prefix_caching: bool | None = None
    fp8_kv_cache: bool | None = None

    def __post_init__(self) -> None:
        if self.max_model_len is not None:
            validate_int(self.max_model_len, "max_model_len", *MAX_MODEL_LEN_RANGE)
        if self.gpu_memory_utilization is not None:
            object.__setattr__(
                self, "gpu_memory_utilization", validate_fraction(self.gpu_memory_utilization)
            )
        for flag in ("fastsafetensors", "prefix_caching", "fp8_kv_cache"):
            value = getattr(self, flag)
            if value is not None and not isinstance(value, bool):
                raise InvalidInput(flag, "must be true or false")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelOptions:
        """Build from a mapping with any subset of the option names."""
        try:
            clean = _OPTIONS_SCHEMA(dict(data))
        except vol.Invalid as err:
            raise InvalidInput(".".join(map(str, err.path)) or "options", err.msg) from None
        return cls(**clean)

    def to_dict(self) -> dict[str, Any]:
        """Only the overrides that are set."""
        return {
            name: getattr(self, name) for name in _OPTION_FIELDS if getattr(self, name) is not None
        }

    def merged(self, newer: ModelOptions) -> ModelOptions:
        """These overrides updated with the ones set in `newer`."""
        return ModelOptions(**(self.to_dict() | newer.to_dict()))

    @property
    def empty(self) -> bool:
        """No override set."""
        return not self.to_dict()


def parse_models_yaml(text: str) -> tuple[ModelEntry, ...]:
    """Parse a `models.yaml` document; InvalidInput on anything malformed or duplicated."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise InvalidInput("models.yaml", f"not valid YAML: {err}") from None
    if not isinstance(document, dict) or not isinstance(document.get("models"), list):
        raise InvalidInput("models.yaml", "expected a top-level 'models' list")
    entries = tuple(ModelEntry.from_dict(item) for item in document["models"])
    _check_unique(entries)
    return entries


def load_bundled_models(path: Path = BUNDLED_MODELS_PATH) -> tuple[ModelEntry, ...]:
    """Read the bundled catalog. Blocking file I/O: call it in an executor from HA."""
    return parse_models_yaml(path.read_text(encoding="utf-8"))


class Catalog:
    """Bundled models plus the user's, each with optional overrides applied."""

    def __init__(
        self,
        bundled: Iterable[ModelEntry],
        user_models: Iterable[ModelEntry] = (),
        overrides: Mapping[str, ModelOptions] | None = None,
    ) -> None:
        self._bundled = {entry.key: entry for entry in bundled}
        self._user: dict[str, ModelEntry] = {}
        for entry in user_models:
            self._check_new(entry)
            self._user[entry.key] = entry
        self._overrides: dict[str, ModelOptions] = {}
        for key, options in (overrides or {}).items():
            self.set_options(key, options)

    @property
    def models(self) -> list[ModelEntry]:
        """Every model, bundled first, with overrides applied."""
        return [self.get(key) for key in (*self._bundled, *self._user)]

    def keys(self) -> list[str]:
        """Every model key, bundled first."""
        return [*self._bundled, *self._user]

    def labels(self) -> dict[str, str]:
        """Display label -> key, as the model select offers them: a name two models share
        gets the key appended."""
        names = [model.name for model in self.models]
        return {
            (model.name if names.count(model.name) == 1 else f"{model.name} ({model.key})"): (
                model.key
            )
            for model in self.models
        }

    def label(self, key: str) -> str:
        """The model's label in `labels()`; the key itself for a model the catalog lacks."""
        return next((label for label, labelled in self.labels().items() if labelled == key), key)

    def __contains__(self, key: object) -> bool:
        return key in self._bundled or key in self._user

    def __len__(self) -> int:
        return len(self._bundled) + len(self._user)

    def is_bundled(self, key: str) -> bool:
        """Whether the model ships with the integration (cannot be removed)."""
        return key in self._bundled

    def get(self, key: str) -> ModelEntry:
        """The model with its overrides applied; InvalidInput if unknown."""
        base = self._bundled.get(key) or self._user.get(key)
        if base is None:
            raise InvalidInput("model", f"unknown model: {key!r}")
        options = self._overrides.get(key)
        return base.with_options(options) if options is not None else base

    def options(self, key: str) -> ModelOptions:
        """The overrides set for a model (empty if none)."""
        self.get(key)
        return self._overrides.get(key, ModelOptions())

    def find_by_repo_id(self, repo_id: str) -> ModelEntry | None:
        """The entry vLLM serves under this model id (case-insensitive), or None."""
        wanted = repo_id.strip().lower()
        return next((entry for entry in self.models if entry.repo_id.lower() == wanted), None)

    def add(
        self,
        name: str,
        repo_id: str,
        mode: ModelMode,
        *,
        key: str | None = None,
        tensor_parallel: int | None = None,
        options: ModelOptions | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> ModelEntry:
        """Add a user model (key derived from the name unless given); returns the entry."""
        options = options or ModelOptions()
        entry = ModelEntry(
            key=key if key is not None else slugify(name),
            name=name,
            repo_id=repo_id,
            mode=mode,
            tensor_parallel=tensor_parallel
            if tensor_parallel is not None
            else (2 if mode == "cluster" else 1),
            max_model_len=options.max_model_len or 32768,
            gpu_memory_utilization=options.gpu_memory_utilization or 0.85,
            fastsafetensors=bool(options.fastsafetensors),
            prefix_caching=True if options.prefix_caching is None else options.prefix_caching,
            fp8_kv_cache=bool(options.fp8_kv_cache),
            extra_args=extra_args,
        )
        self._check_new(entry)
        self._user[entry.key] = entry
        return entry

    def replace_user_model(self, entry: ModelEntry) -> ModelEntry:
        """Put an edited user model in place of the one with its key (same repo id or one
        no other model uses); its overrides are dropped (the entry carries the values)."""
        if entry.key not in self._user:
            raise InvalidInput("model", f"{entry.key!r} is not one of your models")
        other = self.find_by_repo_id(entry.repo_id)
        if other is not None and other.key != entry.key:
            raise InvalidInput("repo_id", f"{entry.repo_id} is already in the catalog")
        self._user[entry.key] = entry
        self._overrides.pop(entry.key, None)
        return entry

    def remove(self, key: str) -> None:
        """Remove a user model and its overrides; InvalidInput for bundled or unknown ones."""
        if key in self._bundled:
            raise InvalidInput("model", f"{key!r} is bundled and cannot be removed")
        if key not in self._user:
            raise InvalidInput("model", f"unknown model: {key!r}")
        del self._user[key]
        self._overrides.pop(key, None)

    def set_options(self, key: str, options: ModelOptions) -> ModelEntry:
        """Merge overrides into a model's; returns the resulting entry (validated)."""
        current = self._overrides.get(key, ModelOptions())
        self.get(key)  # unknown key -> InvalidInput
        merged = current.merged(options)
        base = self._bundled.get(key) or self._user[key]
        entry = base.with_options(merged)
        if merged.empty:
            self._overrides.pop(key, None)
        else:
            self._overrides[key] = merged
        return entry

    def clear_options(self, key: str) -> ModelEntry:
        """Drop a model's overrides (back to the catalog values)."""
        self.get(key)
        self._overrides.pop(key, None)
        return self.get(key)

    def to_dict(self) -> dict[str, Any]:
        """The user's part, for HA storage."""
        return {
            "version": STORAGE_VERSION,
            "user_models": [entry.to_dict() for entry in self._user.values()],
            "overrides": {key: options.to_dict() for key, options in self._overrides.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, bundled: Iterable[ModelEntry]) -> Catalog:
        """Rebuild from `to_dict` output. Entries that no longer validate (or clash with a
        bundled model added by an update) are dropped with a warning rather than failing setup.
        """
        catalog = cls(bundled)
        if not data:
            return catalog
        for item in cast(list[Any], data.get("user_models") or []):
            try:
                entry = ModelEntry.from_dict(item)
                catalog._check_new(entry)
            except (InvalidInput, TypeError) as err:
                _LOGGER.warning("Dropping stored model %r: %s", item, err)
                continue
            catalog._user[entry.key] = entry
        for key, raw in cast(dict[str, Any], data.get("overrides") or {}).items():
            try:
                catalog.set_options(key, ModelOptions.from_dict(raw))
            except (InvalidInput, TypeError) as err:
                _LOGGER.warning("Dropping stored options of %r: %s", key, err)
        return catalog

    def _check_new(self, entry: ModelEntry) -> None:
        if entry.key in self:
            raise InvalidInput("model", f"a model with key {entry.key!r} already exists")
        if self.find_by_repo_id(entry.repo_id) is not None:
            raise InvalidInput("repo_id", f"{entry.repo_id} is already in the catalog")


def slugify(name: str) -> str:
    """A catalog key from a display name: `Llama 3.1 8B` -> `llama-3.1-8b`."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", name.strip().lower()).strip("-._")
    return validate_catalog_key(slug[:64].rstrip("-._") or "model", "name")


def _validate_name(name: object) -> None:
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise InvalidInput("name", "must be 1-100 characters")
    if any(ord(char) < 32 for char in name):
        raise InvalidInput("name", "must not contain control characters")


def _check_unique(entries: Iterable[ModelEntry]) -> None:
    keys: set[str] = set()
    repos: set[str] = set()
    for entry in entries:
        if entry.key in keys or entry.repo_id.lower() in repos:
            raise InvalidInput("models.yaml", f"duplicate model {entry.key!r}")
        keys.add(entry.key)
        repos.add(entry.repo_id.lower())
