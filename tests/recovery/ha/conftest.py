"""Home Assistant harness fixtures for the recovery tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _custom_integrations(enable_custom_integrations: None) -> None:
    """Let HA load this repository's `spark_control`."""
