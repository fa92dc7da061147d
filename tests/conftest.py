"""Fixtures shared by every test.

The integration is imported before Home Assistant's loader runs, so the loader finds this
repository's `custom_components` package instead of the harness's testing config.
"""

from __future__ import annotations

import pytest
import pytest_socket

from custom_components.spark_control.const import DOMAIN

assert DOMAIN


@pytest.fixture(autouse=True)
def _real_sockets(socket_enabled: None) -> None:
    """Every test talks to real peers over loopback; the harness blocks sockets by default.

    Unix sockets stay local too: the gateway's decoder processes are forked by
    multiprocessing's fork server, which is reached over one.
    """
    pytest_socket.socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)
