"""OpenAI-style JSON errors: one exception type and the middleware that renders it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler

_LOGGER = logging.getLogger(__name__)

WEDGE_RETRY_AFTER_S = 60

_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


class ApiError(Exception):
    """An error the client should see, with an HTTP status and an OpenAI-style body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or _TYPE_BY_STATUS.get(
            status, "server_error" if status >= 500 else "invalid_request_error"
        )
        self.code = code
        self.param = param
        self.headers = dict(headers or {})

    def to_response(self) -> web.Response:
        """Render as the JSON body OpenAI clients parse."""
        return error_response(
            self.status,
            self.message,
            type=self.type,
            code=self.code,
            param=self.param,
            headers=self.headers,
        )


class UpstreamError(ApiError):
    """An upstream answered badly (502) or not at all (503/504)."""

    def __init__(self, service: str, status: int, message: str, *, code: str) -> None:
        super().__init__(status, message, type="upstream_error", code=code)
        self.service = service


class UpstreamWedged(UpstreamError):
    """Parakeet or vLLM answered 5xx (or Parakeet hung): the service is likely wedged; HA is
    told to recover it."""

    def __init__(self, service: str, detail: str) -> None:
        super().__init__(
            service,
            503,
            f"{service} is not answering correctly and is being recovered; retry soon",
            code="upstream_wedged",
        )
        self.detail = detail
        self.headers["Retry-After"] = str(WEDGE_RETRY_AFTER_S)


def error_response(
    status: int,
    message: str,
    *,
    type: str | None = None,
    code: str | None = None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """A JSON error response in OpenAI's shape."""
    body = {
        "error": {
            "message": message,
            "type": type or _TYPE_BY_STATUS.get(status, "server_error"),
            "param": param,
            "code": code,
        }
    }
    return web.json_response(body, status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a JSON error; nothing escapes as an HTML page or a crash."""
    try:
        content_type = request.headers.get("Content-Type", "").lower()
        if content_type.startswith("multipart/") and "boundary=" not in content_type:
            # aiohttp's multipart reader raises a bare ValueError on this; answer it up front.
            raise ApiError(400, "multipart body without a boundary", code="invalid_multipart")
        return await handler(request)
    except ApiError as err:
        return err.to_response()
    except web.HTTPRequestEntityTooLarge as err:
        # aiohttp's text names the limit and the size received.
        return error_response(413, f"request body too large: {err.text}", code="request_too_large")
    except web.HTTPException as err:
        if err.status < 400:
            raise
        return _http_error_response(request, err)
    except HttpProcessingError as err:
        # Malformed framing inside the body (e.g. multipart part headers).
        return error_response(400, f"malformed request body: {err.message}", code="invalid_body")
    except ConnectionResetError as err:
        # Client went away mid-request; there is nobody left to answer.
        _LOGGER.debug("client connection lost: %s", err)
        raise
    except TimeoutError:
        return error_response(504, "timed out", code="timeout")
    except Exception:
        _LOGGER.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal gateway error", code="internal_error")


_ECHOED_PATH_CHARS = 200  # of the request path, in the message of an unknown route


def _http_error_response(request: web.Request, err: web.HTTPException) -> web.Response:
    """aiohttp's own 4xx (mostly the router's 404 and 405) in OpenAI's shape, with a code:
    the status's snake-cased phrase (`not_found`, `method_not_allowed`)."""
    path = request.path[:_ECHOED_PATH_CHARS]
    allow = err.headers.get("Allow")
    if err.status == 404:
        message = f"{request.method} {path} is not a route of this gateway"
    elif err.status == 405 and allow:
        message = f"{request.method} is not allowed on {path} (allowed: {allow.replace(',', ', ')})"
    else:
        message = err.reason
    code = HTTPStatus(err.status).phrase.lower().replace(" ", "_").replace("-", "_")
    return error_response(
        err.status, message, code=code, headers={"Allow": allow} if allow else None
    )
