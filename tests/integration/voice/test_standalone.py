"""The bridges run on their own (what the demo uses): a process, its endpoints, a clean stop."""

from __future__ import annotations

import asyncio
import signal
import sys

from wyoming.asr import Transcript

from tests.integration.voice.test_bridges import SENTENCE
from tests.integration.voice.wyoming_io import audio_of, synthesize, transcribe, word_overlap
from tests.sim import SimCluster


async def test_module_runs_both_bridges_until_sigterm(sim: SimCluster) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "custom_components.spark_control.sparklib.voice",
        "--parakeet",
        sim.parakeet.url,
        "--magpie",
        sim.magpie.url,
        "--stt-port",
        "0",
        "--tts-port",
        "0",
        "--host",
        "127.0.0.1",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        lines = [
            (await asyncio.wait_for(process.stdout.readline(), 30)).decode().split()
            for _ in range(2)
        ]
        uris = dict(lines)
        assert set(uris) == {"stt", "tts"}
        stt_port = int(uris["stt"].rsplit(":", 1)[1])
        tts_port = int(uris["tts"].rsplit(":", 1)[1])
        assert uris["stt"] == f"tcp://127.0.0.1:{stt_port}"

        rate, width, channels, pcm = audio_of(await synthesize(tts_port, SENTENCE))
        events = await transcribe(stt_port, pcm, rate, width, channels)
        assert word_overlap(SENTENCE, Transcript.from_event(events[-2]).text) >= 0.6
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0


async def test_bad_arguments_exit_with_usage() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "custom_components.spark_control.sparklib.voice",
        "--stt-port",
        "not-a-port",
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert b"usage:" in err
