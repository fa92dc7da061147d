"""Home Assistant's own `wyoming` integration using the bridges the entry runs in HA's loop."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Iterator
from unittest.mock import AsyncMock, MagicMock, _patch, patch

import av
import pytest
import pytest_socket
from homeassistant.components import stt, tts
from homeassistant.components.assist_pipeline import (
    PipelineEvent,
    PipelineEventType,
    async_pipeline_from_audio_stream,
)
from homeassistant.components.assist_pipeline.pipeline import async_create_default_pipeline
from homeassistant.components.network.const import MDNS_TARGET_IP
from homeassistant.config_entries import SOURCE_IGNORE, ConfigEntryState
from homeassistant.core import Context, HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from ifaddr._posix import get_adapters  # the real one; the harness patches ifaddr's
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe

from custom_components.spark_control.const import (
    CONF_GATEWAY_API_KEY,
    CONF_GATEWAY_URL,
    CONF_STT_PORT,
    CONF_TTS_PORT,
    CONF_VOICE_BRIDGES,
    DOMAIN,
    EVENT_WEDGE_REPORT,
)
from tests.integration.voice.ha_setup import cluster_entry, free_port, lan_address
from tests.integration.voice.test_bridges import REPLY, SENTENCE
from tests.integration.voice.wyoming_io import word_overlap
from tests.sim import SimCluster, SimConfig, generate_client_key

STT_ENTITY = "stt.lab_parakeet"
TTS_ENTITY = "tts.lab_magpie"
# What an ESPHome/VoIP device asks HA for: 16 kHz mono WAV (HA converts with ffmpeg).
WAV_16K = {
    tts.ATTR_PREFERRED_FORMAT: "wav",
    tts.ATTR_PREFERRED_SAMPLE_RATE: 16000,
    tts.ATTR_PREFERRED_SAMPLE_CHANNELS: 1,
}
STT_METADATA = stt.SpeechMetadata(
    language="en",
    format=stt.AudioFormats.WAV,
    codec=stt.AudioCodecs.PCM,
    bit_rate=stt.AudioBitRates.BITRATE_16,
    sample_rate=stt.AudioSampleRates.SAMPLERATE_16000,
    channel=stt.AudioChannels.CHANNEL_MONO,
)


@pytest.fixture(autouse=True)
def _custom_integrations(enable_custom_integrations: None) -> None:
    """Let HA load this repository's integration."""


@pytest.fixture(autouse=True)
async def zeroconf_instance(mock_async_zeroconf: MagicMock) -> MagicMock:
    """HA's shared zeroconf instance as the harness provides it (real multicast would leave
    threads behind); registrations complete at once, like an uncontested mDNS probe."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    done.set_result(None)
    mock_async_zeroconf.async_register_service = AsyncMock(return_value=done)
    mock_async_zeroconf.async_unregister_service = AsyncMock(return_value=done)
    return mock_async_zeroconf


@pytest.fixture(autouse=True)
def _real_network(mock_get_source_ip: _patch) -> Iterator[None]:
    """HA's network helper sees this host's real interfaces instead of the harness's fake
    10.10.10.10, and sockets may reach the LAN address, so the address the bridges announce
    is one HA's `wyoming` integration really connects to."""
    pytest_socket.socket_allow_hosts(["127.0.0.1", MDNS_TARGET_IP])
    pytest_socket.socket_allow_hosts(["127.0.0.1", MDNS_TARGET_IP, lan_address()])
    mock_get_source_ip.stop()
    try:
        with patch("homeassistant.components.network.util.ifaddr.get_adapters", get_adapters):
            yield
    finally:
        mock_get_source_ip.start()


@pytest.fixture(scope="module")
def client_key() -> tuple[str, str]:
    return generate_client_key("spark-control-voice-test")


@pytest.fixture
async def ha_sim(client_key: tuple[str, str]) -> AsyncIterator[SimCluster]:
    async with SimCluster(
        SimConfig(nodes=1, authorized_keys=[client_key[1]], load_seconds=0.2)
    ) as cluster:
        yield cluster


async def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    assert await async_setup_component(hass, "homeassistant", {})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    # Discovery flows and the mDNS announcement run as background tasks.
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED


async def _accept_discovered_bridges(hass: HomeAssistant) -> None:
    """What the user does in the UI: click Configure on each discovered Wyoming service."""
    flows = hass.config_entries.flow.async_progress_by_handler("wyoming")
    assert sorted(flow["context"]["title_placeholders"]["name"] for flow in flows) == [
        "Lab Magpie",
        "Lab Parakeet",
    ]
    for flow in flows:
        assert flow["step_id"] == "zeroconf_confirm"
        result = await hass.config_entries.flow.async_configure(flow["flow_id"], {})
        assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


async def _ha_tts(hass: HomeAssistant, message: str | AsyncIterator[str]) -> bytes:
    stream = tts.async_create_stream(hass, TTS_ENTITY, "en-US", WAV_16K)
    if isinstance(message, str):
        stream.async_set_message(message)
    else:
        stream.async_set_message_stream(message)
    return b"".join([chunk async for chunk in stream.async_stream_result()])


def _decode_wav(data: bytes) -> tuple[int, bytes]:
    """Decode with PyAV (FFmpeg), as a media player would; returns rate and s16 mono PCM."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        rate = stream.rate
        pcm = b"".join(frame.to_ndarray().tobytes() for frame in container.decode(stream))
    return rate, pcm


async def _ha_stt(hass: HomeAssistant, pcm: bytes) -> stt.SpeechResult:
    entity = stt.async_get_speech_to_text_entity(hass, STT_ENTITY)
    assert entity is not None

    async def audio() -> AsyncIterator[bytes]:
        for start in range(0, len(pcm), 3200):
            yield pcm[start : start + 3200]

    return await entity.internal_async_process_audio_stream(STT_METADATA, audio())


async def test_ha_wyoming_uses_the_bridges_for_stt_and_tts(
    hass: HomeAssistant,
    ha_sim: SimCluster,
    client_key: tuple[str, str],
    zeroconf_instance: MagicMock,
) -> None:
    entry = cluster_entry(ha_sim, client_key)
    await _setup(hass, entry)

    # Announced on the LAN address (never 0.0.0.0) on the configured ports.
    announced = [call.args[0] for call in zeroconf_instance.async_register_service.call_args_list]
    assert sorted(info.port for info in announced) == sorted(
        [entry.options[CONF_STT_PORT], entry.options[CONF_TTS_PORT]]
    )
    assert {info.type for info in announced} == {"_wyoming._tcp.local."}
    # The cluster's name tells two clusters' bridges apart on the LAN and in HA's cards.
    suffix = entry.entry_id[-8:].lower()
    assert sorted(info.name for info in announced) == [
        f"Lab Magpie TTS {suffix}._wyoming._tcp.local.",
        f"Lab Parakeet STT {suffix}._wyoming._tcp.local.",
    ]
    assert sorted(info.server for info in announced) == [
        f"lab-magpie-tts-{suffix}.local.",
        f"lab-parakeet-stt-{suffix}.local.",
    ]
    assert {tuple(info.parsed_addresses()) for info in announced} == {(lan_address(),)}

    state = entry.runtime_data.voice.as_dict()
    assert state["stt"] == f"tcp://0.0.0.0:{entry.options[CONF_STT_PORT]}"
    assert set(state["announced"].values()) == {
        f"tcp://{lan_address()}:{entry.options[port]}" for port in (CONF_STT_PORT, CONF_TTS_PORT)
    }
    assert state["voices"] >= 10

    await _accept_discovered_bridges(hass)
    assert hass.states.get(STT_ENTITY) is not None
    assert hass.states.get(TTS_ENTITY) is not None

    # Plain TTS through HA, converted by HA to 16 kHz WAV, then STT through HA.
    rate, pcm = _decode_wav(await _ha_tts(hass, SENTENCE))
    assert rate == 16000
    assert len(pcm) / 2 / rate > 1.0
    result = await _ha_stt(hass, pcm)
    assert result.result is stt.SpeechResultState.SUCCESS
    assert word_overlap(SENTENCE, result.text or "") >= 0.6, result.text

    # HA's wyoming entity's non-streaming call (one `synthesize` event), its WAV played by PyAV.
    engine = tts.get_engine_instance(hass, TTS_ENTITY)
    assert isinstance(engine, tts.TextToSpeechEntity)
    assert engine.async_supports_streaming_input()
    extension, wav = await engine.async_get_tts_audio(SENTENCE, "en-US", {})
    assert extension == "wav"
    rate, pcm = _decode_wav(wav)
    assert rate == 22050
    assert len(pcm) / 2 / rate > 1.0

    # Streaming TTS: HA feeds the reply in pieces as an LLM would.
    async def reply() -> AsyncIterator[str]:
        for word in REPLY.split(" "):
            yield word + " "

    rate, pcm = _decode_wav(await _ha_tts(hass, reply()))
    assert rate == 16000
    assert len(pcm) / 2 / rate > 4.0
    result = await _ha_stt(hass, pcm)
    assert word_overlap(REPLY, result.text or "") >= 0.6, result.text

    # The voice picker shows Magpie's voices with readable names, per language.
    assert {"en-US", "es-US", "fr-FR", "de-DE"} <= tts.async_get_text_to_speech_languages(hass)
    english = {voice.voice_id: voice.name for voice in engine.async_get_supported_voices("en-US")}
    assert english["Magpie-Multilingual.EN-US.Mia"] == "Mia (English, en-US)"
    assert english["Magpie-Multilingual.EN-US.Aria.Calm"] == "Aria, Calm (English, en-US)"
    spanish = engine.async_get_supported_voices("es-US") or []
    assert "Magpie-Multilingual.ES-US.Diego" in {voice.voice_id for voice in spanish}


async def test_parakeet_wedge_reaches_ha_as_a_wedge_report(
    hass: HomeAssistant, ha_sim: SimCluster, client_key: tuple[str, str]
) -> None:
    entry = cluster_entry(ha_sim, client_key)
    await _setup(hass, entry)
    await _accept_discovered_bridges(hass)
    _rate, pcm = _decode_wav(await _ha_tts(hass, SENTENCE))
    reports = async_capture_events(hass, EVENT_WEDGE_REPORT)
    ha_sim.faults.wedge("parakeet")
    result = await _ha_stt(hass, pcm)
    assert result.result is stt.SpeechResultState.ERROR
    await hass.async_block_till_done()
    assert len(reports) == 1
    data = reports[0].data
    assert data["service"] == "parakeet"
    assert data["source"] == "wyoming"
    assert data["entry_id"] == entry.entry_id
    assert "CUBLAS_STATUS_EXECUTION_FAILED" in data["error"]


async def _port_open(port: int) -> bool:
    try:
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Describe().event())
            # An open bridge answers at once; the deadline only guards a loaded machine.
            return (await asyncio.wait_for(client.read_event(), 30)) is not None
    except OSError:
        return False


async def test_unload_closes_servers_and_withdraws_announcements_and_offers(
    hass: HomeAssistant,
    ha_sim: SimCluster,
    client_key: tuple[str, str],
    zeroconf_instance: MagicMock,
) -> None:
    entry = cluster_entry(ha_sim, client_key)
    await _setup(hass, entry)
    ports = [entry.options[CONF_STT_PORT], entry.options[CONF_TTS_PORT]]
    assert [await _port_open(port) for port in ports] == [True, True]
    assert len(hass.config_entries.flow.async_progress_by_handler("wyoming")) == 2

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert [await _port_open(port) for port in ports] == [False, False]
    registered = [c.args[0] for c in zeroconf_instance.async_register_service.call_args_list]
    withdrawn = [c.args[0] for c in zeroconf_instance.async_unregister_service.call_args_list]
    assert sorted(i.name for i in withdrawn) == sorted(i.name for i in registered)
    assert hass.config_entries.flow.async_progress_by_handler("wyoming") == []

    # Loading again brings them back on the same ports.
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert [await _port_open(port) for port in ports] == [True, True]


async def test_bridges_switched_off_in_options(
    hass: HomeAssistant,
    ha_sim: SimCluster,
    client_key: tuple[str, str],
    zeroconf_instance: MagicMock,
) -> None:
    entry = cluster_entry(ha_sim, client_key, **{CONF_VOICE_BRIDGES: False})
    await _setup(hass, entry)
    assert not await _port_open(entry.options[CONF_STT_PORT])
    assert zeroconf_instance.async_register_service.call_count == 0
    assert hass.config_entries.flow.async_progress_by_handler("wyoming") == []


async def test_port_in_use_is_logged_and_the_entry_still_loads(
    hass: HomeAssistant,
    ha_sim: SimCluster,
    client_key: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    blocker = await asyncio.start_server(lambda r, w: w.close(), "0.0.0.0", 0)
    taken = blocker.sockets[0].getsockname()[1]
    try:
        entry = cluster_entry(ha_sim, client_key, **{CONF_STT_PORT: taken})
        await _setup(hass, entry)
        assert f"cannot listen on ports {taken} (STT)" in caplog.text
        assert not await _port_open(entry.options[CONF_TTS_PORT])
        issue = ir.async_get(hass).async_get_issue(DOMAIN, f"voice_port_in_use_{entry.entry_id}")
        assert issue is not None
        assert issue.translation_key == "voice_port_in_use"
        assert issue.translation_placeholders is not None
        assert issue.translation_placeholders["stt_port"] == str(taken)
    finally:
        blocker.close()
        await blocker.wait_closed()
    # The port is free again: a reload starts the bridges and the issue goes away.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert await _port_open(taken)
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"voice_port_in_use_{entry.entry_id}") is None


async def test_new_ports_move_the_configured_wyoming_entries(
    hass: HomeAssistant, ha_sim: SimCluster, client_key: tuple[str, str]
) -> None:
    entry = cluster_entry(ha_sim, client_key)
    await _setup(hass, entry)
    await _accept_discovered_bridges(hass)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()

    new_ports = {CONF_STT_PORT: free_port(), CONF_TTS_PORT: free_port()}
    hass.config_entries.async_update_entry(entry, options={**entry.options, **new_ports})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)

    # No second offer; the existing entries follow the bridges to their new ports.
    assert hass.config_entries.flow.async_progress_by_handler("wyoming") == []
    ports = sorted(e.data["port"] for e in hass.config_entries.async_entries("wyoming"))
    assert ports == sorted(new_ports.values())
    _rate, pcm = _decode_wav(await _ha_tts(hass, SENTENCE))
    result = await _ha_stt(hass, pcm)
    assert word_overlap(SENTENCE, result.text or "") >= 0.6, result.text


async def test_an_ignored_bridge_is_not_offered_again(
    hass: HomeAssistant, ha_sim: SimCluster, client_key: tuple[str, str]
) -> None:
    entry = cluster_entry(ha_sim, client_key)
    await _setup(hass, entry)
    flows = hass.config_entries.flow.async_progress_by_handler("wyoming")
    stt_flow = next(
        flow for flow in flows if flow["context"]["title_placeholders"]["name"] == "Lab Parakeet"
    )
    # The user clicks Ignore on the STT bridge's discovery.
    result = await hass.config_entries.flow.async_init(
        "wyoming",
        context={"source": SOURCE_IGNORE},
        data={"unique_id": stt_flow["context"]["unique_id"], "title": "Lab Parakeet"},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()

    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    names = [
        f["context"]["title_placeholders"]["name"]
        for f in hass.config_entries.flow.async_progress_by_handler("wyoming")
    ]
    assert names == ["Lab Magpie"]
    (ignored,) = hass.config_entries.async_entries("wyoming", include_ignore=True)
    assert ignored.source == SOURCE_IGNORE
    assert ignored.data == {}


async def test_assist_pipeline_hears_and_answers_through_the_bridges(
    hass: HomeAssistant, ha_sim: SimCluster, client_key: tuple[str, str]
) -> None:
    entry = cluster_entry(ha_sim, client_key)
    await _setup(hass, entry)
    await _accept_discovered_bridges(hass)
    pipeline = await async_create_default_pipeline(
        hass, stt_engine_id=STT_ENTITY, tts_engine_id=TTS_ENTITY, pipeline_name="Spark"
    )
    assert pipeline is not None
    _rate, question = _decode_wav(await _ha_tts(hass, "What time is it?"))
    events: list[PipelineEvent] = []

    async def audio() -> AsyncIterator[bytes]:
        for start in range(0, len(question), 3200):
            yield question[start : start + 3200]

    await async_pipeline_from_audio_stream(
        hass,
        context=Context(),
        event_callback=events.append,
        stt_metadata=STT_METADATA,
        stt_stream=audio(),
        pipeline_id=pipeline.id,
    )
    by_type = {event.type: event.data for event in events}
    assert PipelineEventType.ERROR not in by_type, by_type.get(PipelineEventType.ERROR)
    heard = by_type[PipelineEventType.STT_END]["stt_output"]["text"]
    assert word_overlap("What time is it?", heard) >= 0.6, heard
    assert by_type[PipelineEventType.TTS_START]["engine"] == TTS_ENTITY
    spoken = by_type[PipelineEventType.TTS_END]["tts_output"]
    # What a satellite fetches from /api/tts_proxy: HA's MP3 of the bridge's speech.
    stream = tts.async_get_stream(hass, spoken["token"])
    assert stream is not None
    reply = b"".join([chunk async for chunk in stream.async_stream_result()])
    with av.open(io.BytesIO(reply)) as container:
        frames = list(container.decode(audio=0))
    assert sum(frame.samples for frame in frames) / frames[0].sample_rate > 0.5


async def test_diagnostics_show_bridges_and_redact_the_gateway_key(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    ha_sim: SimCluster,
    client_key: tuple[str, str],
) -> None:
    """The entry's diagnostics carry where the bridges listen and the addresses announced
    over mDNS; the gateway's API key and the SSH keys are redacted."""
    assert await async_setup_component(hass, "diagnostics", {})
    entry = cluster_entry(ha_sim, client_key)
    entry = MockConfigEntry(
        domain=entry.domain,
        title=entry.title,
        unique_id=entry.unique_id,
        data={
            **entry.data,
            CONF_GATEWAY_URL: "http://spark-gateway:8080",
            CONF_GATEWAY_API_KEY: "sk-gateway-secret-123",
        },
        options=entry.options,
    )
    await _setup(hass, entry)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    text = str(diagnostics)
    assert "sk-gateway-secret-123" not in text
    assert client_key[0].strip().splitlines()[1] not in text
    assert ha_sim.nodes[0].host_public_key.split()[1] not in text
    data = diagnostics["entry"]["data"]
    assert data[CONF_GATEWAY_API_KEY] == "**REDACTED**"
    assert data[CONF_GATEWAY_URL] == "http://spark-gateway:8080"
    assert list(data["host_keys"].values()) == [ha_sim.nodes[0].host_key_fingerprint]
    voice = diagnostics["voice"]
    stt_port, tts_port = entry.options[CONF_STT_PORT], entry.options[CONF_TTS_PORT]
    assert voice["stt"] == f"tcp://0.0.0.0:{stt_port}"
    assert voice["tts"] == f"tcp://0.0.0.0:{tts_port}"
    assert sorted(voice["announced"].values()) == sorted(
        [f"tcp://{lan_address()}:{stt_port}", f"tcp://{lan_address()}:{tts_port}"]
    )
    assert voice["stopped"] is False
    assert diagnostics["recovery"]["services"]["parakeet"]["wedged"] is False


async def test_unload_while_the_announcement_still_probes(
    hass: HomeAssistant,
    ha_sim: SimCluster,
    client_key: tuple[str, str],
    zeroconf_instance: MagicMock,
) -> None:
    """Unloading while the mDNS probe has not finished: the announcement is cancelled, the
    bridges close, and stopping the voice service again is harmless."""
    probing: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    zeroconf_instance.async_register_service = AsyncMock(return_value=probing)
    entry = cluster_entry(ha_sim, client_key)
    assert await async_setup_component(hass, "homeassistant", {})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    voice = entry.runtime_data.voice
    ports = [entry.options[CONF_STT_PORT], entry.options[CONF_TTS_PORT]]
    announcing = voice.announcing
    assert announcing is not None
    assert not announcing.done()
    assert [await _port_open(port) for port in ports] == [True, True]

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert announcing.cancelled()
    assert voice.as_dict()["stopped"] is True
    assert [await _port_open(port) for port in ports] == [False, False]
    await voice.async_stop()  # HA's stop event may arrive after an unload
    assert [await _port_open(port) for port in ports] == [False, False]
    # The wyoming discovery flows offered at setup finish loading their integration.
    await hass.async_block_till_done(wait_background_tasks=True)
