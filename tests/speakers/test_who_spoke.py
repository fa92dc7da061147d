""" "Who spoke" for voice commands: a Wyoming client → the integration's STT bridge in real
Home Assistant → Parakeet (simulator) for the text, the add-on gateway for the speaker →
a `spark_control_speaker_identified` event when the voice is enrolled."""

from __future__ import annotations

import asyncio

import aiohttp
import numpy as np
import pytest_socket
from homeassistant.components.network.const import MDNS_TARGET_IP
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient

from custom_components.spark_control.const import (
    CONF_GATEWAY_API_KEY,
    CONF_GATEWAY_URL,
    CONF_STT_PORT,
    EVENT_SPEAKER_IDENTIFIED,
)
from tests.gateway.conftest import API_KEY, GatewayFactory
from tests.integration.voice.ha_setup import cluster_entry, lan_address
from tests.integration.voice.test_ha_wyoming import (  # the same real-HA, real-network fixtures
    _custom_integrations,
    _real_network,
    client_key,
    ha_sim,
    zeroconf_instance,
)
from tests.sim import SimCluster
from tests.speakers.voices import enrolment_files, voice

__all__ = ["_custom_integrations", "_real_network", "client_key", "ha_sim", "zeroconf_instance"]

CONTRACT_EVENT_FIELDS = {"entry_id", "name", "speaker_id", "confidence", "text"}


async def command(port: int, samples: np.ndarray) -> str:
    """One voice command as a satellite sends it, in 100 ms chunks."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        pcm = samples.astype("<i2").tobytes()
        for start in range(0, len(pcm), 3200):
            await client.write_event(AudioChunk(16000, 2, 1, pcm[start : start + 3200]).event())
        await client.write_event(AudioStop().event())
        while True:
            event = await asyncio.wait_for(client.read_event(), timeout=60)
            assert event is not None
            if Transcript.is_type(event.type):
                return Transcript.from_event(event).text


async def test_enrolled_speaker_of_a_voice_command_fires_an_event(
    hass: HomeAssistant, ha_sim: SimCluster, client_key: tuple[str, str],
    start_gateway: GatewayFactory,
) -> None:  # fmt: skip
    # The gateway decodes in a forkserver process, reached over a Unix socket.
    pytest_socket.socket_allow_hosts(
        ["127.0.0.1", MDNS_TARGET_IP, lan_address()], allow_unix_socket=True
    )
    gateway = await start_gateway(parakeet_url=ha_sim.parakeet.url)
    form = aiohttp.FormData({"name": "Alice"})
    for clip in enrolment_files("ALLISON"):
        form.add_field("file", clip.read_bytes(), filename=clip.name, content_type="audio/flac")
    async with aiohttp.ClientSession(headers=gateway.headers()) as session:
        resp = await session.post(gateway.url + "/api/speakers", data=form)
        assert resp.status == 201, await resp.text()
        alice = await resp.json()
    base = cluster_entry(ha_sim, client_key)
    entry = MockConfigEntry(
        domain=base.domain, title=base.title, unique_id=base.unique_id, options=base.options,
        data={**base.data, CONF_GATEWAY_URL: gateway.url, CONF_GATEWAY_API_KEY: API_KEY},
    )  # fmt: skip
    assert await async_setup_component(hass, "homeassistant", {})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED
    events = async_capture_events(hass, EVENT_SPEAKER_IDENTIFIED)
    port = entry.options[CONF_STT_PORT]

    # Alice says something the enrolment never heard: her name comes with the text.
    text = await command(port, voice("ALLISON")[: 5 * 16000])
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(events) == 1
    data = events[0].data
    assert set(data) == CONTRACT_EVENT_FIELDS
    assert data["name"] == "Alice"
    assert data["speaker_id"] == alice["id"]
    assert 0 < data["confidence"] <= 1
    assert data["text"] == text
    assert data["entry_id"] == entry.entry_id

    # Someone nobody enrolled (June, the voice nearest hers): the command works, no name.
    await command(port, voice("JUNE")[: 5 * 16000])
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(events) == 1
    assert await hass.config_entries.async_unload(entry.entry_id)
