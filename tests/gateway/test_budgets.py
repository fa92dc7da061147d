"""One slow upstream never starves another; clients that leave take their upstream call along.

A Parakeet that accepts and never answers used to fill the gateway's one request limit, so
chat got 429; a client that gave up left its request in flight until the 300 s timeout; and a
timeout was never reported as a wedge (issue #11, item 5).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from spark_gateway.appkeys import AUDIO_IN_FLIGHT, NOTIFIER, SPOOL
from spark_gateway.audio_codec import wav_to_pcm
from spark_gateway.config import ConcurrencyBudgets, Timeouts
from tests.gateway.audio_files import encode_with_pyav
from tests.gateway.conftest import FakeHomeAssistant, GatewayFactory, RunningGateway
from tests.sim import SimCluster, SimConfig


@dataclass
class HungParakeet:
    """A real HTTP server that reads each transcription request and never answers it."""

    started: int = 0
    abandoned: int = 0  # requests whose connection the gateway closed
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    server: TestServer | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def transcribe(self, request: web.Request) -> web.Response:
        await request.read()
        self.started += 1
        self.arrived.set()
        self._count_changed()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.abandoned += 1
            self._count_changed()
            raise
        raise AssertionError("unreachable")

    def _count_changed(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 30) -> None:
        """Wait until `condition()` holds, checked each time a request arrives or is dropped."""
        async with asyncio.timeout(timeout):
            while not condition():
                await self._changed.wait()

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")


@pytest.fixture
async def hung_parakeet() -> AsyncIterator[HungParakeet]:
    hung = HungParakeet()
    app = web.Application()
    app.router.add_post("/v1/audio/transcriptions", hung.transcribe)
    hung.server = TestServer(app, host="127.0.0.1", handler_cancellation=True)
    await hung.server.start_server()
    yield hung
    await hung.server.close()


def transcription_form(audio: bytes) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", audio, filename="a.wav", content_type="audio/wav")
    return form


async def test_hung_stt_fills_only_its_budget(
    sim: SimCluster,
    hung_parakeet: HungParakeet,
    start_gateway: GatewayFactory,
    short_wav: bytes,
) -> None:
    gateway = await start_gateway(
        vllm_url=sim.vllm.url,
        parakeet_url=hung_parakeet.url,
        max_concurrent_requests=8,
        concurrency=ConcurrencyBudgets(chat=4, stt=2, tts=2, speakers=1),
    )
    held = [
        asyncio.create_task(
            gateway.post("/v1/audio/transcriptions", data=transcription_form(short_wav))
        )
        for _ in range(2)
    ]
    await hung_parakeet.wait_until(lambda: hung_parakeet.started == 2)
    status, body = await gateway.post(
        "/v1/audio/transcriptions", data=transcription_form(short_wav)
    )
    assert status == 429, body
    assert "stt requests in flight (limit 2)" in body["error"]["message"]
    # Chat has its own budget and goes straight through.
    status, body = await gateway.post(
        "/v1/chat/completions",
        json={
            "model": sim.config.served_model,
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "still there?"}],
        },
    )
    assert status == 200, body
    for task in held:
        task.cancel()
    await asyncio.gather(*held, return_exceptions=True)


async def test_client_leaving_cancels_the_upstream_call(
    hung_parakeet: HungParakeet, start_gateway: GatewayFactory, short_wav: bytes
) -> None:
    gateway = await start_gateway(parakeet_url=hung_parakeet.url)
    async with aiohttp.ClientSession(headers=gateway.headers()) as session:
        request = asyncio.create_task(
            session.post(
                gateway.url + "/v1/audio/transcriptions", data=transcription_form(short_wav)
            )
        )
        await asyncio.wait_for(hung_parakeet.arrived.wait(), 30)
        request.cancel()  # the client gives up and closes its connection
        await asyncio.gather(request, return_exceptions=True)
    await gateway.finished.wait_for("POST", "/v1/audio/transcriptions", 499)
    # Had the gateway kept waiting on Parakeet for the gone client, this would time out.
    await hung_parakeet.wait_until(lambda: hung_parakeet.abandoned == 1)
    metrics = await _metrics(gateway)
    assert 'route="/v1/audio/transcriptions",status="499"' in metrics


async def test_parakeet_timeout_is_reported_as_a_wedge(
    hung_parakeet: HungParakeet,
    start_gateway: GatewayFactory,
    fake_ha: FakeHomeAssistant,
    short_wav: bytes,
) -> None:
    gateway = await start_gateway(
        parakeet_url=hung_parakeet.url,
        ha_url=fake_ha.url,
        ha_token=fake_ha.token,
        timeouts=Timeouts(transcription=0.5, connect=0.5),
    )
    status, body = await gateway.post(
        "/v1/audio/transcriptions", data=transcription_form(short_wav)
    )
    assert status == 503, body
    assert body["error"]["code"] == "upstream_wedged"
    await gateway.app[NOTIFIER].drain()
    assert len(fake_ha.events) == 1
    event_type, data = fake_ha.events[0]
    assert event_type == "spark_control_wedge_report"
    assert data["service"] == "parakeet"
    assert data["source"] == "gateway"
    assert "no answer within" in data["error"]


async def _metrics(gateway: RunningGateway) -> str:
    async with aiohttp.ClientSession() as session, session.get(gateway.url + "/metrics") as resp:
        return await resp.text()


async def test_chat_stream_cut_by_the_client_is_499(start_gateway: GatewayFactory) -> None:
    async with SimCluster(SimConfig(token_rate=50.0, load_seconds=0.1)) as slow:
        gateway = await start_gateway(vllm_url=slow.vllm.url)
        body = {
            "model": slow.config.served_model,
            "max_tokens": 200,
            "stream": True,
            "messages": [{"role": "user", "content": "a long answer please"}],
        }
        async with (
            aiohttp.ClientSession(headers=gateway.headers()) as session,
            session.post(gateway.url + "/v1/chat/completions", json=body) as resp,
        ):
            assert resp.status == 200
            await resp.content.readany()  # first chunk, then hang up
        await gateway.finished.wait_for("POST", "/v1/chat/completions", 499)
        metrics = await _metrics(gateway)
        assert 'route="/v1/chat/completions",status="499"' in metrics
        assert 'status="500"' not in metrics


async def test_decoded_audio_in_flight_is_bounded(
    hung_parakeet: HungParakeet, start_gateway: GatewayFactory, short_wav: bytes
) -> None:
    """Decoded audio held by requests (on disk) has a budget; past it the answer is 429."""
    gateway = await start_gateway(
        parakeet_url=hung_parakeet.url,
        max_audio_seconds=10.0,
        max_audio_in_flight_seconds=10.0,
        # Bounds the decode and the wait for room in the budget: long enough for a decoder
        # process on a loaded CI machine, short enough to keep the 429 quick.
        timeouts=Timeouts(decode=5.0),
    )
    # mp3, not the 16 kHz WAV itself: that would go to Parakeet as uploaded, with no decoding.
    samples, rate = wav_to_pcm(short_wav)
    mp3 = encode_with_pyav(samples, rate, "mp3", "libmp3lame")
    held = asyncio.create_task(
        gateway.post("/v1/audio/transcriptions", data=transcription_form(mp3))
    )
    try:
        await asyncio.wait_for(hung_parakeet.arrived.wait(), 30)
        # The held request keeps its decoded second or two; a new decode needs the full 10 s.
        status, body = await asyncio.wait_for(
            gateway.post("/v1/audio/transcriptions", data=transcription_form(mp3)), 30
        )
    finally:
        held.cancel()
        await asyncio.gather(held, return_exceptions=True)
    assert status == 429, body
    assert "decoded audio already" in body["error"]["message"]
    # The cancelled request gave its share back (with its files, once it ended).
    await gateway.finished.wait_for("POST", "/v1/audio/transcriptions", 499)
    await gateway.app[SPOOL].drain()
    in_flight = gateway.app[AUDIO_IN_FLIGHT]
    assert in_flight.free_s == in_flight.capacity_s
