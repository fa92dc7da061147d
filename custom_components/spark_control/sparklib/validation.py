"""Strict checks for every value that ends up in a remote command or a URL.

Everything sent over SSH is quoted with `shlex.join` anyway; these patterns are the second
wall: a value that does not look like a container name, repo id, host or path never gets
near a command line. Each function returns the (normalised) value or raises InvalidInput.
"""

from __future__ import annotations

import ipaddress
import math
import re

from .errors import InvalidInput

CONTAINER_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
CATALOG_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
HOST_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
PATH_RE = re.compile(r"^(~|~/[A-Za-z0-9._/~-]*|/[A-Za-z0-9._/~-]*)$")
USERNAME_RE = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")


def _text(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(field, "must be text")
    return value


def validate_container(value: object, field: str = "container") -> str:
    """A Docker container name."""
    text = _text(value, field)
    if not CONTAINER_RE.fullmatch(text):
        raise InvalidInput(field, f"not a valid container name: {text!r}")
    return text


def validate_repo_id(value: object, field: str = "repo_id") -> str:
    """A Hugging Face repo id, `owner/name`, exactly as given (what is checked is what is stored).

    `fullmatch`, not `match`: `$` alone would let a trailing newline through.
    """
    text = _text(value, field)
    if not REPO_ID_RE.fullmatch(text) or ".." in text:
        raise InvalidInput(field, f"not a valid Hugging Face repo id: {text!r}")
    return text


def validate_catalog_key(value: object, field: str = "model") -> str:
    """A catalog key (lower-case slug)."""
    text = _text(value, field)
    if not CATALOG_KEY_RE.fullmatch(text):
        raise InvalidInput(field, f"not a valid model key: {text!r}")
    return text


def validate_host(value: object, field: str = "host") -> str:
    """A host name (RFC 1123 labels) or an IPv4/IPv6 literal; brackets are stripped."""
    text = _text(value, field).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    name = text.removesuffix(".")
    labels = name.split(".")
    if (
        not name
        or len(name) > 253
        or not all(HOST_LABEL_RE.fullmatch(label) for label in labels)
        # "300.1.1.1" is a broken IPv4 address, not a host name.
        or labels[-1].isdigit()
    ):
        raise InvalidInput(field, f"not a valid host name or IP address: {text!r}")
    return name


def validate_path(value: object, field: str = "path") -> str:
    """An absolute or home-relative (`~/`) path of plain characters, without `..`."""
    text = _text(value, field).strip()
    if not PATH_RE.fullmatch(text) or ".." in text.split("/"):
        raise InvalidInput(field, f"not a valid path (absolute or ~/, no '..'): {text!r}")
    return text.rstrip("/") if len(text) > 1 else text


def validate_username(value: object, field: str = "username") -> str:
    """A POSIX login name."""
    text = _text(value, field)
    if not USERNAME_RE.fullmatch(text):
        raise InvalidInput(field, f"not a valid user name: {text!r}")
    return text


def validate_port(value: object, field: str = "port") -> int:
    """A TCP port, 1-65535."""
    return validate_int(value, field, 1, 65535)


def validate_int(value: object, field: str, minimum: int, maximum: int) -> int:
    """An integer (not a bool) within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, "must be a whole number")
    if not minimum <= value <= maximum:
        raise InvalidInput(field, f"must be between {minimum} and {maximum}")
    return value


def validate_fraction(value: object, field: str = "gpu_memory_utilization") -> float:
    """A fraction in (0, 1], such as vLLM's GPU memory utilization."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(field, "must be a number")
    number = float(value)
    if not math.isfinite(number) or not 0.0 < number <= 1.0:
        raise InvalidInput(field, "must be greater than 0 and at most 1")
    return number
