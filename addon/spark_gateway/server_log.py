"""aiohttp's log of requests it cannot even parse: one warning line each, not a traceback.

Anything on the LAN can send a header line over 8 KiB or bytes that are not HTTP. aiohttp
refuses those before any middleware (`unparsable.py` answers them in JSON), and logs the
parser's exception with its traceback at ERROR: a client could fill the add-on's log at will,
and the exception's text quotes the start of the offending header, which may be an API key.
What stays is the peer and the kind of fault.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError


class UnparsableRequests(logging.Filter):
    """Turns aiohttp's record of a parser error into a one-line warning without its text."""

    def filter(self, record: logging.LogRecord) -> bool:
        fault = record.exc_info[1] if record.exc_info else None
        if isinstance(fault, HttpProcessingError):
            said = record.getMessage()
            record.msg = "%s: %s, answered %s"
            record.args = (said, type(fault).__name__, fault.code)
            record.exc_info = None
            record.exc_text = None
            record.levelno = logging.WARNING
            record.levelname = logging.getLevelName(logging.WARNING)
        return True


def quiet_unparsable_requests() -> None:
    """Install the filter on aiohttp's server logger (once per process)."""
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, UnparsableRequests) for f in logger.filters):
        logger.addFilter(UnparsableRequests())
