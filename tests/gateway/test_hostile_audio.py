"""Uploads built to crash or bloat the decoder get a 400 naming the problem; the gateway lives on.

The WAV headers below segfaulted PyAV inside the gateway process before decoding moved into
throwaway processes and headers were checked first (issue #11).
"""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import replace
from typing import Any

import aiohttp
import psutil
import pytest

from spark_gateway import decoder as decoder_module
from spark_gateway.config import Timeouts
from tests.gateway.conftest import GatewayFactory, RunningGateway
from tests.gateway.hostile_audio import CRASHING_WAVS, silent_flac, wav_at_one_hertz, wav_file
from tests.sim import SimCluster

AUDIO_ROUTES = (
    "/v1/audio/transcriptions",
    "/api/audio/transcribe-with-speakers",
    "/api/audio/diarize-chunk",
)


async def process_exit(pid: int) -> None:
    """Wait until process `pid` has ended (its pidfd turns readable), whoever's child it is."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    ended = loop.create_future()
    loop.add_reader(pidfd, lambda: ended.done() or ended.set_result(None))
    try:
        await asyncio.wait_for(ended, 30)
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)


async def post_audio(
    gateway: RunningGateway, audio: bytes, route: str = AUDIO_ROUTES[0]
) -> tuple[int, dict[str, object]]:
    form = aiohttp.FormData()
    form.add_field("file", audio, filename="upload.wav", content_type="audio/wav")
    form.add_field("model", "whisper-1")
    status, body = await gateway.post(route, data=form)
    assert isinstance(body, dict), body
    return status, body


def error_of(body: dict[str, object]) -> dict[str, object]:
    error = body["error"]
    assert isinstance(error, dict)
    return error


@pytest.mark.parametrize("route", AUDIO_ROUTES)
async def test_crashing_wav_headers_are_400(
    gateway: RunningGateway, short_wav: bytes, route: str
) -> None:
    for name, audio in CRASHING_WAVS.items():
        status, body = await post_audio(gateway, audio, route)
        assert status == 400, (name, body)
        error = error_of(body)
        assert error["code"] == "invalid_audio", name
        assert "WAV" in str(error["message"]), (name, error)
    # Still alive and still transcribing.
    status, body = await post_audio(gateway, short_wav)
    assert status == 200, body


async def test_header_faults_are_named(gateway: RunningGateway) -> None:
    cases = {
        "unsupported WAV format tag 0xFFFF": wav_file(tag=0xFFFF),
        "WAV format 0x0003 with 16 bits per sample": wav_file(tag=3),
        "WAV sample rate 1 Hz": wav_at_one_hertz(),
        "WAV with 0 channels": wav_file(channels=0, block_align=2),
        "WAV with 65535 channels": wav_file(channels=65535, block_align=2),
        "does not match": wav_file(block_align=7),
        "without a valid extensible sub-format": wav_file(tag=0xFFFE),
    }
    for expected, audio in cases.items():
        status, body = await post_audio(gateway, audio)
        assert status == 400, (expected, body)
        assert expected in str(error_of(body)["message"]), (expected, body)


async def test_valid_extensible_and_float_wavs_still_decode(gateway: RunningGateway) -> None:
    guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    extension = (22).to_bytes(2, "little") + (16).to_bytes(2, "little") + b"\x04\x00\x00\x00"
    extensible = wav_file(tag=0xFFFE, extra_fmt=extension + b"\x01\x00" + guid_tail)
    floats = wav_file(tag=3, bits=32, data=b"\x00\x00\x00\x00" * 16000)
    for audio in (extensible, floats):
        status, body = await post_audio(gateway, audio)
        assert status == 200, body


async def test_decoder_refuses_codecless_streams_itself(gateway: RunningGateway) -> None:
    """Behind the header check, the decoder process refuses the same streams (not a crash)."""
    from spark_gateway.appkeys import DECODER, SPOOL

    decoder, spool = gateway.app[DECODER], gateway.app[SPOOL]
    source = spool.directory / "codecless.wav"
    source.write_bytes(CRASHING_WAVS["format tag 0xFFFF"])
    from spark_gateway.audio_codec import AudioDecodeError

    with pytest.raises(AudioDecodeError, match="codec this gateway cannot decode"):
        await decoder.decode(source, spool.directory / "out.wav", max_duration_s=60)


async def test_declared_length_over_the_cap_is_refused_before_decoding(
    sim: SimCluster, start_gateway: GatewayFactory
) -> None:
    gateway = await start_gateway(parakeet_url=sim.parakeet.url, max_audio_seconds=60.0)
    status, body = await post_audio(gateway, silent_flac(120))
    assert status == 400, body
    assert "declares 120 s" in str(error_of(body)["message"])


async def test_undeclared_length_stops_at_the_sample_budget(
    sim: SimCluster, start_gateway: GatewayFactory
) -> None:
    gateway = await start_gateway(parakeet_url=sim.parakeet.url, max_audio_seconds=5.0)
    # A streaming writer's WAV: the data size is left open, so only decoding can tell.
    endless = wav_file(rate=8000, data=b"\x00\x00" * 8000 * 10, data_size=0xFFFFFFFF)
    status, body = await post_audio(gateway, endless)
    assert status == 400, body
    assert "longer than the 5 s allowed" in str(error_of(body)["message"])


async def test_slow_decode_times_out_as_400(sim: SimCluster, start_gateway: GatewayFactory) -> None:
    base = Timeouts()
    gateway = await start_gateway(
        parakeet_url=sim.parakeet.url, timeouts=replace(base, decode=0.001)
    )
    status, body = await post_audio(gateway, silent_flac(60))
    assert status == 400, body
    assert "decoding took longer than" in str(error_of(body)["message"])


async def test_a_crashing_decoder_costs_one_request(
    gateway: RunningGateway, short_wav: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kill a decoder process with SIGSEGV mid-decode: that request is a 400, nothing else fails."""
    from spark_gateway.appkeys import DECODER

    decoder = gateway.app[DECODER]
    took_a_job = asyncio.Event()
    run_job = decoder_module._Worker.run

    async def observed_run(worker: decoder_module._Worker, *job: Any) -> Any:
        took_a_job.set()  # its waiter runs once this task waits on the process: the job is out
        return await run_job(worker, *job)

    monkeypatch.setattr(decoder_module._Worker, "run", observed_run)
    victim = asyncio.create_task(post_audio(gateway, silent_flac(1800)))
    await asyncio.wait_for(took_a_job.wait(), 30)
    crashed = decoder.busy_pids
    assert crashed, "no decoder took the upload"
    for pid in crashed:
        os.kill(pid, signal.SIGSEGV)
    status, body = await victim
    assert status == 400, body
    assert "crashed the decoder (SIGSEGV)" in str(error_of(body)["message"])
    status, body = await post_audio(gateway, short_wav)
    assert status == 200, body
    assert not psutil.pid_exists(crashed[0]) or psutil.Process(crashed[0]).status() == "zombie"


async def test_decoders_outlive_clean_uploads_only(gateway: RunningGateway) -> None:
    """A decoder serves upload after upload; one that refused a file is replaced, as is one
    killed while idle, without failing the upload that finds it dead. Each runs with its own
    limits (address space, CPU time, no core)."""
    from spark_gateway.appkeys import DECODER

    decoder = gateway.app[DECODER]
    stereo = wav_file(channels=2, data=b"\x01\x00" * 32000)  # decoded, never passed through

    async def decoded_by() -> int:
        status, body = await post_audio(gateway, stereo)
        assert status == 200, body
        assert len(decoder.idle_pids) == 1, decoder.idle_pids
        return decoder.idle_pids[0]

    first = await decoded_by()
    assert await decoded_by() == first
    limits = psutil.Process(first).rlimit
    assert limits(psutil.RLIMIT_AS)[0] > 0
    assert 0 < limits(psutil.RLIMIT_CPU)[0] < 3600
    assert limits(psutil.RLIMIT_CORE) == (0, 0)

    status, body = await post_audio(gateway, b"RIFF but no audio in here at all")
    assert status == 400, body
    replacement = await decoded_by()
    assert replacement != first
    assert not psutil.pid_exists(first) or psutil.Process(first).status() == "zombie"

    # Killed while idle (the OOM killer): the next upload is decoded all the same, whether
    # the gateway saw the death before handing it the job (about 1 time in 5) or not.
    for _ in range(5):
        killed = decoder.idle_pids[0]
        os.kill(killed, signal.SIGKILL)
        await process_exit(killed)
        assert await decoded_by() != killed
