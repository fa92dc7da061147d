"""The error policy of the integration: what each sparklib error means for the user.

- `translate_error`: the translated Home Assistant error naming what went wrong (models by
  the display names the model select shows, `model_label`).
- `async_handle_key_error`: an error that needs the user (a changed host key, a rejected
  client key, also when chained behind a failed swap) raises the host-key repair issue and,
  once the entry runs, reloads it; the setup that follows starts reauth or fails with the repair.
- `setup_error`: what a failed connection means for the entry's setup.
- `spark_errors` / `spark_exception_handler`: the policy for everything the user starts
  (actions, buttons, switches, swaps): the key handling above, then the translated error.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Concatenate

from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import (
    ConfigEntryAuthFailed,
    ConfigEntryError,
    ConfigEntryNotReady,
    HomeAssistantError,
    ServiceValidationError,
)
from homeassistant.helpers.translation import async_get_cached_translations

from .const import DOMAIN
from .host_key_issue import async_create_host_key_issue
from .sparklib.errors import (
    AuthRejected,
    CannotConnect,
    CommandFailed,
    CommandTimeout,
    HostKeyChanged,
    InvalidInput,
    NotHealthyInTime,
    ServiceNotOnNode,
    ServiceUnreachable,
    SparkError,
    SwapFailed,
    SwapInProgress,
)

if TYPE_CHECKING:
    from .entity import SparkControlEntity


type ModelLabel = Callable[[str], str]


def _key_itself(key: str) -> str:
    return key


def model_label(entry: ConfigEntry) -> ModelLabel:
    """How the user knows a catalog key: the model select's display name once the entry has
    its catalog (`Catalog.label`), the key itself before."""
    runtime = getattr(entry, "runtime_data", None)  # unset until the setup builds it
    return runtime.catalog.catalog.label if runtime is not None else _key_itself


@callback
def async_swap_failure_reason(hass: HomeAssistant, cause: str | None, detail: str) -> str:
    """Why a swap failed, in HA's language (the `swap_reason_*` translations); `detail` as it
    is for a cause without words (an event recorded before causes were)."""
    strings = async_get_cached_translations(hass, hass.config.language, "exceptions", DOMAIN)
    template = strings.get(f"component.{DOMAIN}.exceptions.swap_reason_{cause}.message")
    return template.format(detail=detail) if template else detail


def translate_error(
    error: SparkError, label: ModelLabel = _key_itself, hass: HomeAssistant | None = None
) -> HomeAssistantError:
    """Build the translated HA error that tells the user what went wrong, naming models by
    `label` (catalog keys in the library's errors) and, given `hass`, a failed swap's reason
    in HA's language."""
    if isinstance(error, InvalidInput):
        return ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_input",
            translation_placeholders={"field": error.field, "error": str(error)},
        )
    if isinstance(error, SwapInProgress):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="swap_in_progress",
            translation_placeholders={"model": label(error.model)},
        )
    if isinstance(error, SwapFailed):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="swap_failed",
            translation_placeholders={
                "model": label(error.model),
                "reason": (
                    async_swap_failure_reason(hass, error.cause, error.detail)
                    if hass is not None
                    else error.reason
                ),
            },
        )
    if isinstance(error, HostKeyChanged):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="host_key_changed",
            translation_placeholders={"host": error.host},
        )
    if isinstance(error, AuthRejected):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="auth_rejected",
            translation_placeholders={"host": error.host},
        )
    if isinstance(error, CannotConnect):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="cannot_connect",
            translation_placeholders={"host": error.host},
        )
    if isinstance(error, ServiceUnreachable):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="service_unreachable",
            translation_placeholders={"service": error.service},
        )
    if isinstance(error, ServiceNotOnNode):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="service_not_on_node",
            translation_placeholders={"service": error.service, "host": error.host},
        )
    if isinstance(error, NotHealthyInTime):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="not_healthy_in_time",
            translation_placeholders={"service": error.service, "minutes": str(error.minutes)},
        )
    if isinstance(error, CommandTimeout):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="command_timeout",
            translation_placeholders={"error": str(error)},
        )
    if isinstance(error, CommandFailed):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="command_failed",
            translation_placeholders={"error": str(error)},
        )
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="unknown_error",
        translation_placeholders={"error": str(error)},
    )


def _key_error(error: SparkError) -> HostKeyChanged | AuthRejected | None:
    """The credential problem behind an error (a failed swap chains its SSH error)."""
    for candidate in (error, error.__cause__):
        if isinstance(candidate, HostKeyChanged | AuthRejected):
            return candidate
    return None


@callback
def async_handle_key_error(hass: HomeAssistant, entry: ConfigEntry, error: SparkError) -> bool:
    """Raise the repair issue for a changed host key and, once the entry runs, reload it so its
    setup shows the fix (reauth flow or the repair). Whether the error needs the user."""
    key_error = _key_error(error)
    if key_error is None:
        return False
    if isinstance(key_error, HostKeyChanged):
        async_create_host_key_issue(hass, entry, key_error)
    if entry.state is ConfigEntryState.LOADED:
        hass.config_entries.async_schedule_reload(entry.entry_id)
    return True


def setup_error(error: SparkError) -> HomeAssistantError:
    """What a failed connection means for the entry's setup: the repair for a changed host
    key, reauth for a rejected key, else a retry later."""
    if isinstance(error, HostKeyChanged):
        return ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="host_key_changed",
            translation_placeholders={"host": error.host},
        )
    if isinstance(error, AuthRejected):
        return ConfigEntryAuthFailed(
            translation_domain=DOMAIN,
            translation_key="auth_rejected",
            translation_placeholders={"host": error.host},
        )
    return ConfigEntryNotReady(
        translation_domain=DOMAIN,
        translation_key="setup_failed",
        translation_placeholders={"error": str(error)},
    )


def action_error(hass: HomeAssistant, entry: ConfigEntry, error: SparkError) -> HomeAssistantError:
    """Apply the key policy, then return the translated error to raise."""
    async_handle_key_error(hass, entry, error)
    return translate_error(error, model_label(entry), hass)


@contextmanager
def spark_errors(hass: HomeAssistant, entry: ConfigEntry) -> Iterator[None]:
    """Run something the user started under the error policy."""
    try:
        yield
    except SparkError as error:
        raise action_error(hass, entry, error) from error


def spark_exception_handler[EntityT: SparkControlEntity[Any], **P](
    func: Callable[Concatenate[EntityT, P], Coroutine[Any, Any, Any]],
) -> Callable[Concatenate[EntityT, P], Coroutine[Any, Any, None]]:
    """Make an entity action follow the error policy (see `spark_errors`)."""

    async def handler(self: EntityT, /, *args: P.args, **kwargs: P.kwargs) -> None:
        with spark_errors(self.hass, self.coordinator.config_entry):
            await func(self, *args, **kwargs)

    return handler
