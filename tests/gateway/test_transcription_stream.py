"""stream=true transcriptions as the official openai SDK consumes them, chunk by chunk."""

from __future__ import annotations

import numpy as np
import openai
import pytest
from openai import AsyncOpenAI

from spark_gateway.audio_codec import pcm_to_wav, wav_to_pcm
from tests.gateway.audio_files import word_overlap
from tests.gateway.conftest import SPOKEN, RunningGateway
from tests.sim import SimCluster


def long_recording(speech_wav: bytes, repeats: int) -> bytes:
    """The spoken sentence `repeats` times with short pauses: about 3.5 s each."""
    samples, rate = wav_to_pcm(speech_wav)
    pause = np.zeros(rate // 2, np.int16)
    return pcm_to_wav(np.concatenate([np.concatenate([samples, pause])] * repeats), rate)


async def test_stream_sends_deltas_while_transcribing(
    client: AsyncOpenAI, sim: SimCluster, speech_wav: bytes
) -> None:
    audio = long_recording(speech_wav, 12)  # about 42 s: two chunks
    stream = await client.audio.transcriptions.create(
        model="whisper-1", file=("long.wav", audio), stream=True
    )
    deltas: list[str] = []
    transcribed_at_first_delta = None
    done = None
    async for event in stream:
        if event.type == "transcript.text.delta":
            if not deltas:
                transcribed_at_first_delta = sim.parakeet.transcriptions
            deltas.append(event.delta)
        elif event.type == "transcript.text.done":
            done = event.text
    assert len(deltas) == 2
    assert transcribed_at_first_delta == 1  # the second chunk was still to be transcribed
    assert sim.parakeet.transcriptions == 2
    assert done == "".join(deltas)
    assert word_overlap(" ".join([SPOKEN] * 12), done) >= 0.6, done


async def test_short_stream_is_one_delta(client: AsyncOpenAI, short_wav: bytes) -> None:
    stream = await client.audio.transcriptions.create(
        model="whisper-1", file=("short.wav", short_wav), stream=True, response_format="text"
    )
    events = [event async for event in stream]
    assert [e.type for e in events] == ["transcript.text.delta", "transcript.text.done"]
    assert events[1].text == events[0].delta  # type: ignore[union-attr]


async def test_stream_with_a_verbose_format_is_400(client: AsyncOpenAI, short_wav: bytes) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.audio.transcriptions.create(
            model="whisper-1", file=("a.wav", short_wav), stream=True, response_format="srt"
        )
    assert info.value.body["param"] == "stream"  # type: ignore[index]


async def test_wedge_mid_stream_is_an_error_event(
    gateway: RunningGateway, sim: SimCluster, speech_wav: bytes
) -> None:
    """Parakeet failing after the first delta: the SDK raises the error event."""
    async with AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=gateway.api_key, max_retries=0
    ) as client:
        stream = await client.audio.transcriptions.create(
            model="whisper-1", file=("long.wav", long_recording(speech_wav, 12)), stream=True
        )
        seen = []

        async def read_all() -> None:
            async for event in stream:
                seen.append(event.type)
                sim.faults.wedge("parakeet")

        with pytest.raises(openai.APIError) as info:
            await read_all()
    assert seen == ["transcript.text.delta"]
    assert "recovered" in info.value.message
