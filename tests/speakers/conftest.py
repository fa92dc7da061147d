"""Local fixtures for the speaker tests.

`tests/conftest.py`'s `_real_sockets` returns before its `yield`, which pytest rejects; this
override (same name, lower level) keeps the intent: real sockets enabled for every test.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _real_sockets(socket_enabled: None) -> None:
    """Every test talks to real peers over loopback; the harness blocks sockets by default."""
    return
