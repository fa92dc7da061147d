"""Helpers for the speech tests: multipart calls to the fakes and word overlap scoring."""

from __future__ import annotations

import io
import re
import struct
import wave

import aiohttp

SENTENCE = "Please turn on the kitchen lights and set the temperature to twenty degrees"
SHORT_SENTENCE = "Turn on the kitchen lights"


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def word_overlap(reference: str, hypothesis: str) -> float:
    """Share of the reference's distinct words that appear in the hypothesis."""
    expected = set(words(reference))
    return len(expected & set(words(hypothesis))) / len(expected)


async def synthesize(
    http: aiohttp.ClientSession,
    magpie_url: str,
    text: str = SENTENCE,
    *,
    rate: int = 16000,
    voice: str = "Magpie-Multilingual.EN-US.Aria",
    online: bool = False,
) -> aiohttp.ClientResponse:
    form = aiohttp.FormData()
    form.add_field("text", text)
    form.add_field("language", "en-US")
    form.add_field("voice", voice)
    form.add_field("sample_rate_hz", str(rate))
    form.add_field("encoding", "LINEAR_PCM")
    path = "synthesize_online" if online else "synthesize"
    response = await http.post(f"{magpie_url}/v1/audio/{path}", data=form)
    await response.read()
    return response


async def transcribe(
    http: aiohttp.ClientSession,
    parakeet_url: str,
    audio: bytes,
    *,
    response_format: str = "json",
    filename: str = "speech.wav",
) -> aiohttp.ClientResponse:
    form = aiohttp.FormData()
    form.add_field("file", audio, filename=filename, content_type="audio/wav")
    form.add_field("model", "nvidia/parakeet-tdt-0.6b-v3")
    form.add_field("language", "en")
    form.add_field("response_format", response_format)
    form.add_field("timestamp_granularities[]", "word")
    response = await http.post(f"{parakeet_url}/v1/audio/transcriptions", data=form)
    await response.read()
    return response


def wav_bytes(pcm: bytes, rate: int, width: int = 2) -> bytes:
    """A PCM WAV header claiming `rate` and `width` around whatever bytes are given."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return buffer.getvalue()


def riff_chunks(data: bytes) -> list[tuple[bytes, int]]:
    """(chunk id, size) for every chunk after the RIFF/WAVE header."""
    chunks: list[tuple[bytes, int]] = []
    offset = 12
    while offset + 8 <= len(data):
        chunk_id, size = (
            data[offset : offset + 4],
            struct.unpack("<I", data[offset + 4 : offset + 8])[0],
        )
        chunks.append((chunk_id, size))
        offset += 8 + size + (size & 1)
    return chunks


def silence_wav(seconds: float = 0.5, rate: int = 16000) -> bytes:
    return wav_bytes(b"\x00\x00" * int(seconds * rate), rate)
