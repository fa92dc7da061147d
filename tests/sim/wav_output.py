"""Build the WAV files Magpie returns, including the header quirks tests can switch on."""

from __future__ import annotations

import io
import struct
import wave

import numpy as np
import soundfile  # type: ignore[import-untyped]


def pcm16_to_wav(
    pcm16: bytes, rate: int, *, as_float32: bool = False, trailing_list: bool = False
) -> bytes:
    """A mono WAV; optionally float32 (format tag 3) and/or a LIST chunk after the data."""
    buffer = io.BytesIO()
    if as_float32:
        samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768.0
        soundfile.write(buffer, samples, rate, format="WAV", subtype="FLOAT")
    else:
        with wave.open(buffer, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(rate)
            wav.writeframes(pcm16)
    data = buffer.getvalue()
    if trailing_list:
        data = _append_list_chunk(data)
    return data


def _append_list_chunk(data: bytes) -> bytes:
    """Some encoders put metadata after the audio; naive readers take it for samples."""
    software = b"Lavf61.7.100\x00"
    info = b"INFO" + b"ISFT" + struct.pack("<I", len(software)) + software
    chunk = b"LIST" + struct.pack("<I", len(info)) + info
    body = data + chunk
    return body[:4] + struct.pack("<I", len(body) - 8) + body[8:]
