"""Fixtures of the voice bridge tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest

from custom_components.spark_control.sparklib.voice import VoiceBridgeConfig, VoiceBridges
from tests.sim import SimCluster, SimConfig


@dataclass
class RunningBridges:
    """Bridges under test, the simulator behind them and the wedge reports they made."""

    sim: SimCluster
    bridges: VoiceBridges
    wedge_reports: list[str] = field(default_factory=list)

    @property
    def stt_port(self) -> int:
        return self.bridges.stt.port

    @property
    def tts_port(self) -> int:
        return self.bridges.tts.port


@pytest.fixture
async def sim() -> AsyncIterator[SimCluster]:
    """One simulated GPU node with Parakeet (pocketsphinx) and Magpie (flite)."""
    async with SimCluster(SimConfig(nodes=1)) as cluster:
        yield cluster


@pytest.fixture
async def running(sim: SimCluster) -> AsyncIterator[RunningBridges]:
    """Both bridges on free loopback ports, pointed at the simulator."""
    async with aiohttp.ClientSession() as session:
        reports: list[str] = []
        config = VoiceBridgeConfig(
            parakeet_url=sim.parakeet.url,
            magpie_url=sim.magpie.url,
            stt_port=0,
            tts_port=0,
            host="127.0.0.1",
        )
        bridges = VoiceBridges(session, config, on_wedge=reports.append)
        await bridges.start()
        try:
            yield RunningBridges(sim, bridges, reports)
        finally:
            await bridges.async_stop()
