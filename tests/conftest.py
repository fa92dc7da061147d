"""Fixtures shared by every test.

The integration is imported before Home Assistant's loader runs, so the loader finds this
repository's `custom_components` package instead of the harness's testing config.
"""

from __future__ import annotations

import pytest

from custom_components.spark_control.const import DOMAIN

assert DOMAIN


@pytest.fixture(autouse=True)
def _real_sockets(socket_enabled: None) -> None:
    """Every test talks to real peers over loopback; the harness blocks sockets by default."""
