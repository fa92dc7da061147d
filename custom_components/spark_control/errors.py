"""Turn sparklib errors into translated Home Assistant errors (one place for the mapping)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Concatenate

from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from .const import DOMAIN
from .sparklib.errors import (
    AuthRejected,
    CannotConnect,
    CommandFailed,
    CommandTimeout,
    HostKeyChanged,
    InvalidInput,
    ServiceUnreachable,
    SparkError,
    SwapFailed,
    SwapInProgress,
)

if TYPE_CHECKING:
    from .entity import SparkControlEntity


def translate_error(error: SparkError) -> HomeAssistantError:
    """Build the translated HA error that tells the user what went wrong."""
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
            translation_placeholders={"model": error.model},
        )
    if isinstance(error, SwapFailed):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="swap_failed",
            translation_placeholders={"model": error.model, "reason": error.reason},
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


def spark_exception_handler[EntityT: SparkControlEntity[Any], **P](
    func: Callable[Concatenate[EntityT, P], Coroutine[Any, Any, Any]],
) -> Callable[Concatenate[EntityT, P], Coroutine[Any, Any, None]]:
    """Make an entity action raise translated errors instead of library ones."""

    async def handler(self: EntityT, /, *args: P.args, **kwargs: P.kwargs) -> None:
        try:
            await func(self, *args, **kwargs)
        except AuthRejected as error:
            # A reload runs the setup again, which starts the reauth flow.
            self.hass.config_entries.async_schedule_reload(self.coordinator.config_entry.entry_id)
            raise translate_error(error) from error
        except SparkError as error:
            raise translate_error(error) from error

    return handler
