"""PyAV decoding of what browsers and apps upload, and encoding of every speech format."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from spark_gateway.audio_codec import (
    SPEECH_FORMATS,
    AudioDecodeError,
    StreamEncoder,
    _frame_samples,
    change_speed,
    content_type,
    decode_to_pcm,
    decode_to_wav16k,
    encode_audio,
    wav_to_pcm,
)
from tests.gateway.audio_files import encode_with_pyav

UPLOADS = [
    ("webm", "libopus"),  # browser MediaRecorder
    ("ogg", "libopus"),
    ("mp3", "libmp3lame"),
    ("ipod", "aac"),  # .m4a
    ("flac", "flac"),
    ("wav", "pcm_s16le"),
]


@pytest.mark.parametrize(("container", "codec"), UPLOADS)
def test_uploads_become_16k_mono_wav(speech_wav: bytes, container: str, codec: str) -> None:
    samples, rate = wav_to_pcm(speech_wav)
    upload = encode_with_pyav(samples, rate, container, codec)
    decoded = decode_to_wav16k(upload)
    expected = len(samples) / rate
    assert decoded.duration_s == pytest.approx(expected, abs=0.08)
    assert decoded.samples.dtype == np.int16
    with av.open(io.BytesIO(decoded.wav)) as check:
        stream = check.streams.audio[0]
        assert (stream.rate, stream.channels, stream.codec_context.name) == (16000, 1, "pcm_s16le")
    # Real signal survived (not silence, not clipped noise).
    assert 300 < np.abs(decoded.samples.astype(np.int32)).mean() < 20000


def test_format_is_sniffed_not_named(speech_wav: bytes) -> None:
    """The bytes decide; there is no name to trust (Open WebUI mislabels webm as wav)."""
    samples, rate = wav_to_pcm(speech_wav)
    webm = encode_with_pyav(samples, rate, "webm", "libopus")
    assert webm[:4] == b"\x1a\x45\xdf\xa3"  # EBML magic, not RIFF
    assert decode_to_wav16k(webm).duration_s > 2


def test_stereo_44k_float_is_downmixed_and_resampled() -> None:
    rate = 44100
    t = np.arange(rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    stereo = np.stack([tone, tone])
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="wav") as out:
        stream = out.add_stream("pcm_f32le", rate=rate)
        stream.layout = "stereo"
        frame = av.AudioFrame.from_ndarray(stereo, format="fltp", layout="stereo")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    decoded = decode_to_wav16k(buffer.getvalue())
    assert decoded.duration_s == pytest.approx(1.0, abs=0.01)
    spectrum = np.abs(np.fft.rfft(decoded.samples.astype(np.float64)))
    assert np.argmax(spectrum) * 16000 / len(decoded.samples) == pytest.approx(440, abs=2)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"this is a text file, not audio" * 10, "could not be decoded"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt garbage", "could not be decoded"),
    ],
)
def test_bad_input_raises_decode_error(data: bytes, message: str) -> None:
    with pytest.raises(AudioDecodeError, match=message):
        decode_to_wav16k(data)


def test_truncated_upload_is_an_error_or_shorter(speech_wav: bytes) -> None:
    samples, rate = wav_to_pcm(speech_wav)
    mp3 = encode_with_pyav(samples, rate, "mp3", "libmp3lame")
    # A cut-off recording still decodes what arrived; a head-only fragment is rejected.
    partial = decode_to_wav16k(mp3[: len(mp3) // 2])
    assert 0.5 < partial.duration_s < len(samples) / rate
    with pytest.raises(AudioDecodeError):
        decode_to_wav16k(mp3[:20])


def test_duration_cap(speech_wav: bytes) -> None:
    with pytest.raises(AudioDecodeError, match="longer than"):
        decode_to_wav16k(speech_wav, max_duration_s=1.0)


@pytest.mark.parametrize("fmt", SPEECH_FORMATS)
def test_every_speech_format_round_trips(speech_wav: bytes, fmt: str) -> None:
    samples, rate = wav_to_pcm(speech_wav)
    encoded = encode_audio(samples, rate, fmt)
    if fmt == "pcm":
        assert len(encoded) == 2 * len(samples)
        back = np.frombuffer(encoded, dtype="<i2")
    else:
        back = decode_to_pcm(encoded, rate=rate)
    assert len(back) / rate == pytest.approx(len(samples) / rate, abs=0.12)
    assert content_type(fmt, 22050).startswith("audio/")
    assert content_type("pcm", 22050) == "audio/pcm;rate=22050;channels=1"


@pytest.mark.parametrize("fmt", SPEECH_FORMATS)
def test_stream_encoder_concatenates_blocks(speech_wav: bytes, fmt: str) -> None:
    samples, rate = wav_to_pcm(speech_wav)
    encoder = StreamEncoder(fmt, rate)
    stream = encoder.encode(samples) + encoder.encode(samples) + encoder.finish()
    back = np.frombuffer(stream, dtype="<i2") if fmt == "pcm" else decode_to_pcm(stream, rate=rate)
    assert len(back) / rate == pytest.approx(2 * len(samples) / rate, abs=0.15)


@pytest.mark.parametrize("speed", [0.25, 0.5, 1.5, 4.0])
def test_speed_changes_duration_not_rate(speech_wav: bytes, speed: float) -> None:
    samples, rate = wav_to_pcm(speech_wav)
    faster = change_speed(samples, rate, speed)
    assert len(faster) == pytest.approx(len(samples) / speed, rel=0.03)


def test_unknown_encoder_format() -> None:
    with pytest.raises(ValueError, match="unknown audio format"):
        StreamEncoder("ogg", 16000)


@pytest.mark.parametrize(
    "fmt", ["u8", "s16", "s32", "flt", "dbl", "u8p", "s16p", "s32p", "fltp", "dblp"]
)
@pytest.mark.parametrize("layout", ["mono", "stereo", "5.1"])
def test_frame_samples_are_pyavs_own(fmt: str, layout: str) -> None:
    """The decoder's quick view of a frame's samples is byte for byte PyAV's to_ndarray()."""
    frame = av.AudioFrame(format=fmt, layout=layout, samples=37)
    rng = np.random.default_rng(3)
    for plane in frame.planes:
        plane.update(rng.integers(0, 256, plane.buffer_size, dtype=np.uint8).tobytes())
    expected, quick = frame.to_ndarray(), _frame_samples(frame)
    assert (quick.dtype, quick.shape) == (expected.dtype, expected.shape)
    assert quick.tobytes() == expected.tobytes()
