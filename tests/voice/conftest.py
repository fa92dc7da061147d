"""Fixtures of the voice bridge tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _real_sockets(socket_enabled: None) -> None:
    """Real loopback sockets (overrides the root fixture, whose generator never yields)."""
