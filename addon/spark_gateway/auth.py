"""Bearer API keys: which keys are valid, and the middleware that enforces them."""

from __future__ import annotations

import hmac
import logging
import secrets
from pathlib import Path
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from .config import GatewayConfig
from .errors import ApiError

_LOGGER = logging.getLogger(__name__)

KEY_FILE_NAME: Final = "api_key"
PROTECTED_PREFIXES: Final = ("/v1/", "/api/")
# Listings that hold nothing secret, answered without a key: Open WebUI fetches them for its
# audio settings without an Authorization header. A key that is sent is still checked.
PUBLIC_LISTINGS: Final = frozenset({"/v1/models", "/v1/audio/models", "/v1/audio/voices"})


def resolve_api_keys(config: GatewayConfig) -> tuple[str, ...]:
    """Configured keys, else the key generated on first start and persisted in the data dir."""
    if config.api_keys or not config.auth_required:
        return config.api_keys
    key_file = config.data_dir / KEY_FILE_NAME
    try:
        stored = key_file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        stored = ""
    except OSError as err:
        _LOGGER.warning("cannot read %s: %s", key_file, err)
        stored = ""
    if stored:
        return (stored,)
    key = "sk-spark-" + secrets.token_urlsafe(32)
    _persist(key_file, key)
    # Shown once so the owner can paste it into Open WebUI; discovery hands it to HA too.
    _LOGGER.warning("generated gateway API key (shown once, stored in %s): %s", key_file, key)
    return (key,)


def _persist(key_file: Path, key: str) -> None:
    try:
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(key + "\n", encoding="utf-8")
        key_file.chmod(0o600)
    except OSError as err:
        _LOGGER.warning("cannot persist the API key in %s (valid until restart): %s", key_file, err)


def request_key(request: web.Request) -> str | None:
    """The key a client sent: `Authorization: Bearer ...` or `x-api-key` (some SDKs)."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-api-key") or None


def key_is_valid(presented: str, keys: tuple[str, ...]) -> bool:
    """Constant-time comparison against every valid key."""
    # aiohttp hands non-UTF-8 header bytes over as surrogate escapes; they must compare (and
    # fail) like any other wrong key instead of raising UnicodeEncodeError.
    candidate = presented.encode("utf-8", "surrogateescape")
    valid = False
    for key in keys:
        valid |= hmac.compare_digest(candidate, key.encode())
    return valid


def auth_middleware(keys: tuple[str, ...], *, required: bool) -> Middleware:
    """Reject unauthenticated calls to /v1/* and /api/* with an OpenAI-style 401."""

    @web.middleware
    async def check_api_key(request: web.Request, handler: Handler) -> web.StreamResponse:
        if required and request.method != "OPTIONS" and request.path.startswith(PROTECTED_PREFIXES):
            presented = request_key(request)
            if presented is None and _is_public_listing(request):
                return await handler(request)
            if presented is None:
                raise ApiError(
                    401,
                    "missing API key: send 'Authorization: Bearer <key>'",
                    code="missing_api_key",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if not key_is_valid(presented, keys):
                raise ApiError(
                    401,
                    "invalid API key",
                    code="invalid_api_key",
                    headers={"WWW-Authenticate": "Bearer"},
                )
        return await handler(request)

    return check_api_key


def _is_public_listing(request: web.Request) -> bool:
    return request.method in ("GET", "HEAD") and request.path in PUBLIC_LISTINGS
