"""Failures of the speech servers behind the bridges."""

from __future__ import annotations


class SpeechServiceError(Exception):
    """A speech server could not be reached or answered with an error."""

    def __init__(self, service: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{service}: {message}")
        self.service = service
        self.message = message
        self.status = status


class SpeechServerFault(SpeechServiceError):
    """The server answered 500: for Parakeet the sign of a wedged GPU context."""


def unreachable(service: str, err: BaseException) -> SpeechServiceError:
    """A server that refused, dropped or did not answer the call, said in words: the error's
    repr would put aiohttp's connection key (TLS, proxy fields) into Home Assistant's log."""
    detail = "no answer in time" if isinstance(err, TimeoutError) else str(err)
    return SpeechServiceError(service, f"unreachable: {detail or type(err).__name__}")
