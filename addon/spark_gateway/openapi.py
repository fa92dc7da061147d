"""The OpenAPI 3.1 document of the gateway.

Routes are added with `add_route`, which takes the route's OpenAPI operation along: each route
module declares its operations next to its handlers, and the document is what they declared.
A test checks that the document and the router agree both ways.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from . import __version__

OPERATIONS: Final = web.AppKey("openapi_operations", dict[tuple[str, str], dict[str, Any]])

ERROR: Final = {"$ref": "#/components/responses/Error"}
UPSTREAM_FAILURES: Final = (502, 503, 504)
GUARDED: Final = (401, 429)  # every route with a key (sent, or required) can answer these
OBJECT: Final = {"type": "object"}
BINARY_FILE: Final = {"type": "string", "format": "binary"}

_PATH_PATTERN: Final = re.compile(r"\{(\w+):[^}]*\}")  # aiohttp's {name:regex} -> {name}


def json_result(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    """A response with a JSON body of `schema`."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def errors(*statuses: int) -> dict[str, Any]:
    """The OpenAI-style error response for each of `statuses`."""
    return {str(status): ERROR for status in statuses}


def multipart_body(fields: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """A required multipart/form-data request body with `fields`."""
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "required": required, "properties": fields}
            }
        },
    }


def add_route(
    app: web.Application,
    method: str,
    path: str,
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    operation: dict[str, Any],
) -> None:
    """Serve `handler` at `path` and describe it in the document (the one way a route is added).
    A GET route answers HEAD too (aiohttp sends the headers and drops the body)."""
    if method == "GET":
        app.router.add_get(path, handler, allow_head=True)
    else:
        app.router.add_route(method, path, handler)
    app.setdefault(OPERATIONS, {})[(_document_path(path), method.lower())] = operation


def _document_path(path: str) -> str:
    return _PATH_PATTERN.sub(r"{\1}", path)


def routed_operations(app: web.Application) -> set[tuple[str, str]]:
    """(path, method) of every route the app serves (HEAD/OPTIONS added by aiohttp skipped)."""
    found: set[tuple[str, str]] = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "OPTIONS", "*") or route.resource is None:
            continue
        found.add((_document_path(route.resource.canonical), route.method.lower()))
    return found


def build_document(app: web.Application) -> dict[str, Any]:
    """The OpenAPI document of the routes added to `app` with `add_route`."""
    declared = app.get(OPERATIONS, {})
    paths: dict[str, dict[str, Any]] = {}
    for (path, method), operation in sorted(declared.items()):
        item = copy.deepcopy(operation)
        item.setdefault("operationId", f"{method}_{path.strip('/').replace('/', '_')}")
        paths.setdefault(path, {})[method] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Spark Control gateway",
            "version": __version__,
            "description": "OpenAI-compatible chat, speech-to-text and text-to-speech for the LAN.",
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {
                "Error": json_result(
                    {
                        "type": "object",
                        "required": ["error"],
                        "properties": {
                            "error": {
                                "type": "object",
                                "required": ["message", "type"],
                                "properties": {
                                    "message": {"type": "string"},
                                    "type": {"type": "string"},
                                    # vLLM's relayed errors carry the status as code.
                                    "code": {"type": ["string", "integer", "null"]},
                                    "param": {"type": ["string", "null"]},
                                },
                            }
                        },
                    },
                    "OpenAI-style error",
                )
            },
        },
    }


async def openapi_json(request: web.Request) -> web.Response:
    """GET /openapi.json."""
    return web.json_response(build_document(request.app))


def setup(app: web.Application) -> None:
    """Register the document's route."""
    add_route(
        app,
        "GET",
        "/openapi.json",
        openapi_json,
        {"summary": "This document", "security": [], "responses": {"200": json_result(OBJECT)}},
    )
