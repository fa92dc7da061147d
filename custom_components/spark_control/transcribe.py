"""The `transcribe_with_speakers` action: a recording from HA's media folder → who said what.

The file is streamed to the add-on gateway's `/api/audio/transcribe-with-speakers` (URL and
key stored on the entry by add-on discovery) and the gateway's JSON comes back as the
action's response, so an automation can file meeting notes.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import aiohttp
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
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .actions import ATTR_CLUSTER, async_get_cluster_entry
from .const import CONF_GATEWAY_API_KEY, CONF_GATEWAY_URL, DOMAIN

ACTION_TRANSCRIBE_WITH_SPEAKERS = "transcribe_with_speakers"
ATTR_FILE = "file"
MAX_REFERENCE_CHARS = 1024  # longer than any media path worth typing
MAX_NAME_BYTES = 255  # NAME_MAX of every common file system
ATTR_LANGUAGE = "language"
GATEWAY_PATH = "/api/audio/transcribe-with-speakers"
MEDIA_SOURCE_PREFIX = "media-source://media_source/"
# The gateway's codes for an upload that is not audio it can read (empty, damaged, too long).
NOT_AUDIO_CODES = frozenset({"empty_audio", "invalid_audio"})
MAX_FILE_BYTES = 2 * 1024**3
# A long meeting is transcribed in chunks on the GPU; allow for several hours of audio.
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=3 * 3600, sock_connect=10)

TRANSCRIBE_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_CLUSTER): cv.string,
        vol.Required(ATTR_FILE): cv.string,
        vol.Optional(ATTR_LANGUAGE): vol.Match(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$"),
    }
)


def invalid_input(key: str, **placeholders: str) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders
    )


def resolve_media_file(media_dirs: dict[str, str], reference: str) -> Path:
    """`local/meetings/a.mp3`, `media-source://media_source/local/a.mp3` or `meetings/a.mp3`
    (in the first media folder) → an absolute path that stays inside that media folder."""
    relative = reference.removeprefix(MEDIA_SOURCE_PREFIX).lstrip("/")
    if not media_dirs or not _plausible_path(relative):
        raise invalid_input("media_file_invalid", file=reference[:MAX_REFERENCE_CHARS])
    folder_name, _, rest = relative.partition("/")
    if folder_name in media_dirs:
        root, inner = Path(media_dirs[folder_name]), rest
    else:
        root, inner = Path(next(iter(media_dirs.values()))), relative
    root = root.resolve()
    path = (root / inner).resolve()
    if not inner or not path.is_relative_to(root):
        raise invalid_input("media_file_invalid", file=reference)
    return path


def _plausible_path(relative: str) -> bool:
    """No NUL (the OS refuses it) and no name longer than file systems allow (ENAMETOOLONG)."""
    return (
        "\0" not in relative
        and len(relative) <= MAX_REFERENCE_CHARS
        and all(len(part.encode()) <= MAX_NAME_BYTES for part in relative.split("/"))
    )


def open_media_file(path: Path, reference: str) -> IO[bytes]:
    """Open the recording (in the executor); a clear error when it is missing or too big."""
    if not path.is_file():
        raise invalid_input("media_file_not_found", file=reference)
    if path.stat().st_size > MAX_FILE_BYTES:
        raise invalid_input("media_file_too_large", file=reference)
    return path.open("rb")


async def async_transcribe_with_speakers(
    hass: HomeAssistant, gateway_url: str, api_key: str, path: Path, language: str | None
) -> dict[str, Any]:
    """Post the file to the gateway and return its JSON answer."""
    handle = await hass.async_add_executor_job(open_media_file, path, path.name)
    try:
        form = aiohttp.FormData()
        # aiohttp reads file objects in the executor while it streams the upload.
        form.add_field("file", handle, filename=path.name, content_type="application/octet-stream")
        if language:
            form.add_field("language", language)
        return await gateway_request(
            hass, "POST", gateway_url.rstrip("/") + GATEWAY_PATH, api_key, data=form
        )
    except GatewayError as err:
        if err.code in NOT_AUDIO_CODES:  # the user's file, not a fault of the gateway
            raise invalid_input("media_file_not_audio", file=path.name, reason=err.message) from err
        if err.code == "request_too_large":  # over the add-on's max_upload_mb
            raise invalid_input("media_files_too_large", files=path.name,
                                reason=err.message) from err  # fmt: skip
        raise
    finally:
        await hass.async_add_executor_job(handle.close)


async def gateway_request(
    hass: HomeAssistant,
    method: str,
    url: str,
    api_key: str,
    *,
    data: aiohttp.FormData | None = None,
    json: dict[str, Any] | None = None,
    client_timeout: aiohttp.ClientTimeout = REQUEST_TIMEOUT,
) -> dict[str, Any]:
    """One call to the add-on gateway; its errors become translated `HomeAssistantError`s."""
    session = async_get_clientsession(hass)
    try:
        async with session.request(
            method, url, data=data, json=json, headers={"Authorization": f"Bearer {api_key}"},
            timeout=client_timeout,
        ) as resp:  # fmt: skip
            if resp.status not in (200, 201):
                raise await GatewayError.from_response(resp)
            body: dict[str, Any] = await resp.json()
            return body
    except (aiohttp.ClientError, TimeoutError) as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="gateway_unreachable",
            translation_placeholders={"error": str(err) or type(err).__name__},
        ) from err


class GatewayError(HomeAssistantError):
    """The gateway refused a call: its status, message, and the `code` and `param` of its
    OpenAI-style error, so an action can turn a refusal it knows into its own words."""

    def __init__(self, status: int, message: str, code: str | None, param: str | None) -> None:
        super().__init__(
            translation_domain=DOMAIN,
            translation_key="gateway_error",
            translation_placeholders={"status": str(status), "message": message},
        )
        self.status = status
        self.message = message
        self.code = code
        self.param = param

    @classmethod
    async def from_response(cls, resp: aiohttp.ClientResponse) -> GatewayError:
        try:
            error = (await resp.json(content_type=None))["error"]
            message = str(error["message"])[:300]
        except (ValueError, KeyError, TypeError, aiohttp.ClientError):
            return cls(resp.status, resp.reason or "error", None, None)
        code, param = error.get("code"), error.get("param")
        return cls(resp.status, message, code if isinstance(code, str) else None,
                   param if isinstance(param, str) else None)  # fmt: skip


def linked_gateway(call: ServiceCall) -> tuple[str, str]:
    """The gateway URL and key stored on the call's cluster entry by add-on discovery."""
    # Only the entry's gateway link is used: the cluster itself need not be running.
    entry = async_get_cluster_entry(call.hass, call, loaded=False)
    gateway_url = entry.data.get(CONF_GATEWAY_URL)
    api_key = entry.data.get(CONF_GATEWAY_API_KEY)
    if not gateway_url or not api_key:
        raise invalid_input("gateway_not_linked", cluster=entry.title)
    return str(gateway_url), str(api_key)


async def _handle(call: ServiceCall) -> ServiceResponse:
    hass = call.hass
    gateway_url, api_key = linked_gateway(call)
    path = resolve_media_file(hass.config.media_dirs, call.data[ATTR_FILE])
    return await async_transcribe_with_speakers(
        hass, gateway_url, api_key, path, call.data.get(ATTR_LANGUAGE)
    )


@callback
def async_setup_transcribe_services(hass: HomeAssistant) -> None:
    """Register `transcribe_with_speakers` and the enrolled-speaker actions (called from
    `async_setup_services`)."""
    from .speakers import async_setup_speaker_services

    hass.services.async_register(
        DOMAIN,
        ACTION_TRANSCRIBE_WITH_SPEAKERS,
        _handle,
        schema=TRANSCRIBE_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    async_setup_speaker_services(hass)
