"""Fixtures shared by every test.

The integration is imported before Home Assistant's loader runs, so the loader finds this
repository's `custom_components` package instead of the harness's testing config.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import pytest_socket

from custom_components.spark_control.const import DOMAIN

assert DOMAIN

# The harness's plugin turns on SQLAlchemy's statement logging (`sqlalchemy.engine` at INFO)
# and logs to the terminal's stderr. The recorder writes from its own thread, so in the tests
# that run it (the logbook tests) each statement was printed: captured while the test ran,
# but straight into the run's output whenever pytest paused its capture to print progress.
# Those lines say nothing a test checks; statements are logged again from WARNING up.
logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)


@pytest.fixture(autouse=True)
def _real_sockets(socket_enabled: None) -> None:
    """Every test talks to real peers over loopback; the harness blocks sockets by default.

    Unix sockets stay local too: the gateway's decoder processes are forked by
    multiprocessing's fork server, which is reached over one.
    """
    pytest_socket.socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)


class _IntegrationReports(logging.Handler):
    """Home Assistant's deprecation and frame-helper reports that name this integration."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.reports: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if f"integration '{DOMAIN}'" in message or (
            "deprecated" in message.lower() and DOMAIN in message
        ):
            self.reports.append(message)


@pytest.fixture(autouse=True)
def _no_deprecation_reports() -> Iterator[None]:
    """The integration triggers no `report_usage` ("Detected that custom integration
    'spark_control' ...") and no deprecated-constant warning on the HA under test; HA reports
    each call site once per process, so the first test to reach it fails."""
    handler = _IntegrationReports()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
    assert handler.reports == []
