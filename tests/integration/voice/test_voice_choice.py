"""Which Magpie voice a TTS request gets, read from the simulated Magpie over real HTTP; and
what the catalog does when Magpie cannot be reached."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest

from custom_components.spark_control.sparklib.voice.errors import SpeechServiceError
from custom_components.spark_control.sparklib.voice.magpie import MagpieClient
from custom_components.spark_control.sparklib.voice.voices import (
    BridgeVoiceCatalog,
    UnknownVoiceError,
)
from tests.sim import SimCluster


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
async def catalog(sim: SimCluster, session: aiohttp.ClientSession) -> BridgeVoiceCatalog:
    return BridgeVoiceCatalog(MagpieClient(session, sim.magpie.url))


def _closed_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def test_voice_by_name_language_or_default(catalog: BridgeVoiceCatalog) -> None:
    """An exact name wins; a language tag given as the name (as wyoming 1.7 sends it) or as
    the language picks a voice of that language, by region first, then by base language; with
    neither the default language's first voice is used."""
    mia = await catalog.choose("Magpie-Multilingual.EN-US.Mia", None)
    assert mia.name == "Magpie-Multilingual.EN-US.Mia"
    assert (await catalog.choose("es-US", None)).language == "es-US"
    assert (await catalog.choose(None, "fr_FR")).language == "fr-FR"
    assert (await catalog.choose(None, "de")).language == "de-DE"
    assert (await catalog.choose(None, None)).language == "en-US"


async def test_unknown_voice_or_language_is_refused(catalog: BridgeVoiceCatalog) -> None:
    with pytest.raises(UnknownVoiceError, match="unknown voice"):
        await catalog.choose("Magpie-Multilingual.EN-US.Nobody", None)
    with pytest.raises(UnknownVoiceError, match="no voice speaks 'ja-JP'"):
        await catalog.choose(None, "ja-JP")


async def test_magpie_unreachable(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """Without Magpie a request fails with a speech-service error, while Describe still
    answers (no voices) after a short wait and logs why."""
    catalog = BridgeVoiceCatalog(MagpieClient(session, _closed_url(), timeout=2), describe_wait=2)
    with pytest.raises(SpeechServiceError):
        await catalog.choose(None, None)
    with caplog.at_level(logging.WARNING):
        info = await catalog.info()
    assert info.tts
    assert not info.tts[0].voices
    assert any("Cannot read Magpie's voices" in r.getMessage() for r in caplog.records)
    await catalog.close()


async def test_a_hung_magpie_is_said_in_words(
    sim: SimCluster, session: aiohttp.ClientSession
) -> None:
    """A Magpie that does not answer in time is "unreachable: no answer in time" (a
    TimeoutError's text is empty, its repr only a class name)."""
    sim.faults.hang("magpie")
    client = MagpieClient(session, sim.magpie.url, timeout=0.5)
    with pytest.raises(SpeechServiceError) as failure:
        await client.list_voices()
    assert str(failure.value) == "magpie: unreachable: no answer in time"


async def test_close_cancels_a_refresh_in_flight(
    sim: SimCluster, session: aiohttp.ClientSession
) -> None:
    """A Describe that gave up waiting leaves the refresh running; close() cancels it."""
    sim.faults.hang("magpie")
    catalog = BridgeVoiceCatalog(
        MagpieClient(session, sim.magpie.url, timeout=30), describe_wait=0.05
    )
    info = await catalog.info()
    assert not info.tts[0].voices
    (refreshing,) = [task for task in asyncio.all_tasks() if task.get_name() == "magpie voices"]
    assert not refreshing.done()
    await catalog.close()
    assert refreshing.cancelled()


async def test_a_hung_voice_list_is_waited_for_once(
    sim: SimCluster, session: aiohttp.ClientSession
) -> None:
    """With Magpie hanging, the first Describe waits its short while; later ones answer
    without waiting on the same hung read (each would spend half of HA's second)."""
    sim.faults.hang("magpie")
    catalog = BridgeVoiceCatalog(
        MagpieClient(session, sim.magpie.url, timeout=120), describe_wait=0.05
    )
    try:
        assert not (await catalog.info()).tts[0].voices
        catalog._describe_wait = 3600  # a wait now would outlast the guard below
        async with asyncio.timeout(30):
            assert not (await catalog.info()).tts[0].voices
        await sim.faults.clear()
        # The hung read ends once Magpie answers again; the next Describe then lists voices.
        async with asyncio.timeout(30):
            await catalog.refreshed()
        assert (await catalog.info()).tts[0].voices
    finally:
        await catalog.close()
