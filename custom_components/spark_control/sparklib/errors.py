"""Errors raised by sparklib; the HA glue maps each to a translated message."""

from __future__ import annotations

import math
from typing import Literal


class SparkError(Exception):
    """Base class of every error sparklib raises on purpose."""


class CannotConnect(SparkError):
    """A node or its SSH port could not be reached (refused, timed out, dropped)."""

    def __init__(self, host: str, detail: str = "") -> None:
        self.host = host
        self.detail = detail
        super().__init__(f"Cannot connect to {host}" + (f": {detail}" if detail else ""))


class AuthRejected(SparkError):
    """The node refused our SSH key (not in authorized_keys, or the user is wrong)."""

    def __init__(self, host: str) -> None:
        self.host = host
        super().__init__(f"SSH key rejected by {host}")


class HostKeyNotPinned(SparkError):
    """A command was attempted before the node's host key was pinned (see `SshNode.pin`)."""

    def __init__(self, host: str) -> None:
        self.host = host
        super().__init__(f"No pinned host key for {host}; validate the cluster first")


class HostKeyChanged(SparkError):
    """The node presented a host key other than the pinned one: refuse to talk to it."""

    def __init__(self, host: str, expected_fingerprint: str, actual_fingerprint: str) -> None:
        self.host = host
        self.expected_fingerprint = expected_fingerprint
        self.actual_fingerprint = actual_fingerprint
        super().__init__(
            f"Host key of {host} changed: expected {expected_fingerprint}, got {actual_fingerprint}"
        )


class CommandFailed(SparkError):
    """A remote command exited non-zero."""

    def __init__(self, command: str, exit_status: int, stderr: str) -> None:
        self.command = command
        self.exit_status = exit_status
        self.stderr = stderr
        super().__init__(f"`{command}` exited {exit_status}: {stderr.strip()[:500]}")


class CommandTimeout(SparkError):
    """A remote command did not finish in time (the channel was closed)."""

    def __init__(self, command: str, timeout: float) -> None:
        self.command = command
        self.timeout = timeout
        super().__init__(f"`{command}` did not finish within {timeout:g} s")


class InvalidInput(SparkError, ValueError):
    """A value failed validation before anything was sent; `field` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class SwapInProgress(SparkError):
    """A swap was requested while another one is running on the same cluster."""

    def __init__(self, model: str) -> None:
        self.model = model
        super().__init__(f"A swap to {model} is already in progress")


# Why a swap failed: no ready model in time, vLLM crashed (with its error line, or before
# one was seen), its container exited, its server vanished, an SSH or HTTP failure of a
# common kind (`swap_error_cause`), or another error.
type SwapFailureCause = Literal[
    "timeout",
    "crashed",
    "crashed_early",
    "exited",
    "server_exited",
    "ssh_unreachable",
    "ssh_key_rejected",
    "host_key_changed",
    "command_timeout",
    "command_failed",
    "http_timeout",
    "http_unreachable",
    "error",
]


class SwapFailed(SparkError):
    """A swap ended without the model becoming ready.

    `reason` is short English ("timeout after 900 s", "crashed: <line>", or the SSH error);
    `cause` says which kind of failure it is and `detail` holds its particulars (the seconds
    waited, the crash line, the error), so the failure can be told in other words.
    `last_lines` are the last log lines seen. The underlying SparkError, if any, is chained as
    `__cause__` (e.g. HostKeyChanged, so the caller can raise a repair issue).
    """

    def __init__(
        self,
        model: str,
        reason: str,
        last_lines: list[str],
        *,
        cause: SwapFailureCause = "error",
        detail: str | None = None,
    ) -> None:
        self.model = model
        self.reason = reason
        self.last_lines = last_lines
        self.cause: SwapFailureCause = cause
        self.detail = reason if detail is None else detail
        super().__init__(f"Swap to {model} failed: {reason}")


class ServiceUnreachable(SparkError):
    """An HTTP endpoint refused, timed out or answered garbage; `refused` when no connection
    could be made at all (nothing listens there: a stopped or exited server)."""

    def __init__(self, service: str, url: str, detail: str = "", *, refused: bool = False) -> None:
        self.service = service
        self.url = url
        self.detail = detail
        self.refused = refused
        super().__init__(f"{service} unreachable at {url}" + (f": {detail}" if detail else ""))


class NotHealthyInTime(SparkError):
    """A service that was (re)started did not report healthy within the time allowed."""

    def __init__(self, service: str, seconds: float) -> None:
        self.service = service
        self.minutes = max(1, math.ceil(seconds / 60))  # how the wait is told
        super().__init__(f"{service} did not become healthy within {self.minutes} minutes")


class ServiceNotOnNode(SparkError):
    """A service's host is none of the cluster's SSH nodes, so its container cannot be acted on."""

    def __init__(self, service: str, host: str) -> None:
        self.service = service
        self.host = host
        super().__init__(
            f"{service} runs on {host}, which is not one of the cluster's SSH nodes; add that "
            "host as a node or correct the service's host"
        )


def swap_error_cause(error: SparkError) -> tuple[SwapFailureCause, str]:
    """The cause and detail of a swap that `error` (SSH, HTTP) broke: its kind, and only
    particulars that need no words (a host, seconds, a URL, the tool's own last line), so the
    failure can be told in any language. Any other error is `error` with its English text."""
    match error:
        case HostKeyChanged():
            return "host_key_changed", error.host
        case AuthRejected():
            return "ssh_key_rejected", error.host
        case CannotConnect():
            return "ssh_unreachable", error.host
        case CommandTimeout():
            return "command_timeout", f"{error.timeout:g}"
        case CommandFailed():
            lines = [line.strip() for line in error.stderr.splitlines() if line.strip()]
            return "command_failed", lines[-1][:300] if lines else f"exit {error.exit_status}"
        case ServiceUnreachable(refused=False, detail="timed out"):
            return "http_timeout", error.url
        case ServiceUnreachable():
            return "http_unreachable", error.url
    return "error", str(error)
