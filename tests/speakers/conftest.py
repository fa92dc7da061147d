"""Fixtures for the speaker tests: the simulator and gateways on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.gateway.conftest import TIMEOUTS, GatewayFactory, gateways
from tests.sim import SimCluster, SimConfig

# The shipped name threshold (0.10) was chosen on the tuning voices to name no stranger, and
# names few enrolled people with the simulator's weak encoder; the end-to-end tests check the
# naming paths at a threshold where this encoder separates their two voices (measured:
# these two voices lie 0.2-0.25 from their own prints and farther from each other).
NAME_THRESHOLD = 0.25


@pytest.fixture
async def sim() -> AsyncIterator[SimCluster]:
    """A one-node simulated cluster (Parakeet with real recognition and diarization)."""
    async with SimCluster(SimConfig(nodes=1)) as cluster:
        yield cluster


@pytest.fixture
async def start_gateway(tmp_path: Path) -> AsyncIterator[GatewayFactory]:
    """The gateway suite's gateways, with a minute to transcribe and diarize long recordings."""
    timeouts = replace(TIMEOUTS, transcription=60, diarization=60)
    async with gateways(tmp_path, timeouts=timeouts) as start:
        yield start
