"""WAV parsing robust to what real TTS servers send (float32, extra chunks, odd sizes)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from custom_components.spark_control.sparklib.voice.wav import (
    PcmAudio,
    WavFormatError,
    parse_wav,
    pcm_to_wav,
)

RATE = 22050


def _tone(seconds: float = 0.1) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return 0.5 * np.sin(2 * np.pi * 440 * t)


def _riff(chunks: list[tuple[bytes, bytes]]) -> bytes:
    body = b"WAVE"
    for chunk_id, data in chunks:
        body += chunk_id + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _fmt(fmt_tag: int, channels: int, bits: int, rate: int = RATE) -> bytes:
    align = channels * bits // 8
    return struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * align, align, bits)


def test_int16_round_trip() -> None:
    pcm = (_tone() * 32767).astype("<i2").tobytes()
    audio = parse_wav(pcm_to_wav(PcmAudio(RATE, 2, 1, pcm)))
    assert audio == PcmAudio(RATE, 2, 1, pcm)
    assert audio.seconds == pytest.approx(0.1, abs=1e-3)


def test_float32_becomes_int16() -> None:
    tone = _tone()
    wav = _riff([(b"fmt ", _fmt(3, 1, 32)), (b"data", tone.astype("<f4").tobytes())])
    audio = parse_wav(wav)
    assert (audio.rate, audio.width, audio.channels) == (RATE, 2, 1)
    samples = np.frombuffer(audio.pcm, dtype="<i2")
    assert len(samples) == len(tone)
    assert np.max(np.abs(samples / 32767.0 - tone)) < 1e-3


def test_extensible_float_and_clipping() -> None:
    fmt = _fmt(0xFFFE, 1, 32) + struct.pack("<HHI", 22, 32, 0) + struct.pack("<H", 3) + b"\0" * 14
    wav = _riff([(b"fmt ", fmt), (b"data", np.array([2.0, -2.0, 0.25], "<f4").tobytes())])
    samples = np.frombuffer(parse_wav(wav).pcm, dtype="<i2")
    assert samples.tolist() == [32767, -32767, 8191]


def test_list_chunk_after_data_is_not_audio() -> None:
    pcm = (_tone() * 32767).astype("<i2").tobytes()
    trailer = b"INFOISFT" + struct.pack("<I", 9) + b"Magpie 1\0"
    wav = _riff([(b"fmt ", _fmt(1, 1, 16)), (b"data", pcm), (b"LIST", trailer)])
    assert parse_wav(wav).pcm == pcm


def test_chunks_before_data_and_odd_padding() -> None:
    pcm = (_tone() * 32767).astype("<i2").tobytes()
    wav = _riff([(b"fmt ", _fmt(1, 1, 16)), (b"junk", b"abc"), (b"data", pcm)])
    assert parse_wav(wav).pcm == pcm


def test_streaming_header_with_unknown_data_size() -> None:
    pcm = (_tone() * 32767).astype("<i2").tobytes()
    header = _riff([(b"fmt ", _fmt(1, 1, 16))])
    wav = header + b"data" + struct.pack("<I", 0xFFFFFFFF) + pcm
    assert parse_wav(wav).pcm == pcm


def test_8_24_and_32_bit_integer_pcm() -> None:
    eight = _riff([(b"fmt ", _fmt(1, 1, 8)), (b"data", bytes([128, 255, 0]))])
    assert np.frombuffer(parse_wav(eight).pcm, "<i2").tolist() == [0, 127 << 8, -128 << 8]
    values = [0x123456, -0x123456]
    packed = b"".join(v.to_bytes(3, "little", signed=True) for v in values)
    twenty_four = _riff([(b"fmt ", _fmt(1, 1, 24)), (b"data", packed)])
    assert np.frombuffer(parse_wav(twenty_four).pcm, "<i2").tolist() == [0x1234, -0x1235]
    wide = np.array([0x12345678, -0x12345678], "<i4").tobytes()
    thirty_two = _riff([(b"fmt ", _fmt(1, 1, 32)), (b"data", wide)])
    assert np.frombuffer(parse_wav(thirty_two).pcm, "<i2").tolist() == [0x1234, -0x1235]


def test_truncated_last_frame_is_dropped() -> None:
    wav = _riff([(b"fmt ", _fmt(1, 2, 16)), (b"data", b"\1\0\2\0\3\0")])
    audio = parse_wav(wav)
    assert audio.pcm == b"\1\0\2\0"
    assert audio.frames == 1


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"ID3\x03 not a wav at all",
        _riff([(b"data", b"\0\0")]),
        _riff([(b"fmt ", _fmt(1, 1, 16))]),
        _riff([(b"fmt ", _fmt(2, 1, 4)), (b"data", b"\0\0")]),
        _riff([(b"fmt ", b"\1\0")]),
        _riff([(b"fmt ", _fmt(1, 0, 16)), (b"data", b"\0\0")]),
    ],
)
def test_bad_files_raise(data: bytes) -> None:
    with pytest.raises(WavFormatError):
        parse_wav(data)
