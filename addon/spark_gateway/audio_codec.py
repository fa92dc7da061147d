"""PyAV audio conversions: any upload to 16 kHz mono WAV, and PCM to the OpenAI speech formats.

Formats are recognised from the bytes (PyAV/FFmpeg probing), never from a file name or MIME type,
because browsers and Open WebUI mislabel recordings. Everything here is CPU-bound and blocking:
call it through `asyncio.to_thread`.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, BinaryIO, Final, NamedTuple

import av
import av.error
import numpy as np
import numpy.typing as npt
from av.audio.resampler import AudioResampler
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.filter import Graph

from .audio_errors import AudioDecodeError
from .audio_limits import MAX_CHANNELS, MAX_SAMPLE_RATE, MAX_STREAMS, MIN_SAMPLE_RATE
from .opus_remux import RemuxedOgg, remux_to_ogg
from .parakeet_formats import is_remuxed

TARGET_RATE: Final = 16000
SPEECH_FORMATS: Final = ("mp3", "opus", "aac", "flac", "wav", "pcm")

# format -> (container, codec, sample format the encoder takes, output rate or None to keep)
_ENCODERS: Final[dict[str, tuple[str, str, str, int | None]]] = {
    "mp3": ("mp3", "libmp3lame", "s16p", None),
    "opus": ("ogg", "libopus", "s16", 48000),  # Opus only runs at 8/12/16/24/48 kHz
    "aac": ("adts", "aac", "fltp", None),
    "flac": ("flac", "flac", "s16", None),
}

CONTENT_TYPES: Final = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg; codecs=opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}


@dataclass(frozen=True, slots=True)
class DecodedAudio:
    """Audio normalised for Parakeet: 16 kHz mono signed 16-bit."""

    wav: bytes
    samples: npt.NDArray[np.int16]
    duration_s: float


def decode_to_wav16k(data: bytes, *, max_duration_s: float | None = None) -> DecodedAudio:
    """Decode any audio container/codec FFmpeg knows and resample to 16 kHz mono s16 WAV."""
    samples = decode_to_pcm(data, rate=TARGET_RATE, max_duration_s=max_duration_s)
    return DecodedAudio(
        wav=pcm_to_wav(samples, TARGET_RATE),
        samples=samples,
        duration_s=len(samples) / TARGET_RATE,
    )


def decode_to_pcm(
    data: bytes, *, rate: int, max_duration_s: float | None = None
) -> npt.NDArray[np.int16]:
    """Decode the first audio stream to mono s16 samples at `rate`."""
    if not data:
        raise AudioDecodeError("the audio file is empty")
    parts = list(decode_blocks(io.BytesIO(data), rate=rate, max_duration_s=max_duration_s))
    samples = np.concatenate(parts).astype(np.int16, copy=False) if parts else _EMPTY
    if samples.size == 0:
        raise AudioDecodeError("the audio holds no samples")
    return samples


class DecodedWav(NamedTuple):
    """What `decode_to_wav` made: the samples written and, for a short result, the WAV itself."""

    n_samples: int
    wav: bytes | None  # None: the WAV is in the `spill_to` file


IN_MEMORY_WAV_BYTES: Final = 256 * 1024  # 8 s at 16 kHz: a voice command never touches disk


def decode_to_wav(
    source: str | bytes,
    *,
    spill_to: str,
    max_duration_s: float,
    rate: int = TARGET_RATE,
    in_memory_bytes: int = IN_MEMORY_WAV_BYTES,
) -> DecodedWav:
    """Decode a file (a path, or the bytes of a short upload) to a mono s16 WAV at `rate`.

    A result of up to `in_memory_bytes` comes back as bytes; a longer one is written to
    `spill_to` (created here, exclusively) block by block, so memory stays at one block (about
    two seconds) whatever the length. This is what the gateway's decoder processes run.
    """
    blocks = decode_blocks(source, rate=rate, max_duration_s=max_duration_s)
    return _write_wav(blocks, spill_to=spill_to, rate=rate, in_memory_bytes=in_memory_bytes)


def convert_for_parakeet(
    source: str | bytes, *, spill_to: str, max_duration_s: float
) -> DecodedWav | RemuxedOgg:
    """An upload in the form Parakeet takes it (`parakeet_formats.py`): Opus copied into Ogg
    (bytes for an upload given as bytes, else the file `spill_to`), anything else decoded to
    16 kHz mono WAV as `decode_to_wav` does. One opening of the file serves either way."""
    with _decode_errors(), _open_input(source) as container:
        stream = check_stream(container, max_duration_s)
        codec = stream.codec_context
        if is_remuxed(codec.name, codec.channels, codec.extradata):
            target = None if isinstance(source, bytes) else spill_to
            return remux_to_ogg(container, stream, spill_to=target, max_duration_s=max_duration_s)
        blocks = _checked_blocks(container, stream, TARGET_RATE, max_duration_s)
        return _write_wav(
            blocks, spill_to=spill_to, rate=TARGET_RATE, in_memory_bytes=IN_MEMORY_WAV_BYTES
        )


def _write_wav(
    blocks: Iterator[npt.NDArray[np.int16]], *, spill_to: str, rate: int, in_memory_bytes: int
) -> DecodedWav:
    held: list[bytes] = []
    held_bytes = written = 0
    out: BinaryIO | None = None
    try:
        for block in blocks:
            data = block.astype("<i2", copy=False).tobytes()
            written += block.size
            if out is None and held_bytes + len(data) <= in_memory_bytes:
                held.append(data)
                held_bytes += len(data)
                continue
            if out is None:
                out = open(spill_to, "xb")  # noqa: SIM115 (closed below, header patched first)
                out.write(wav_header(rate, None))
                out.writelines(held)
                held.clear()
            out.write(data)
        if written == 0:
            raise AudioDecodeError("the audio holds no samples")
        if out is None:
            return DecodedWav(written, wav_header(rate, written) + b"".join(held))
        out.seek(0)
        out.write(wav_header(rate, written))
        return DecodedWav(written, None)
    finally:
        if out is not None:
            out.close()


def decode_blocks(
    source: str | bytes | io.BytesIO, *, rate: int, max_duration_s: float | None = None
) -> Iterator[npt.NDArray[np.int16]]:
    """Mono s16 blocks at `rate` from the first audio stream, checked before and while decoding.

    The stream is refused before its first packet when PyAV cannot decode it or its declared
    rate, channels or length are out of bounds; while decoding, the output is counted against
    `max_duration_s`, so a file that lies about its length stops at the budget.
    """
    with _decode_errors(), _open_input(source) as container:
        stream = check_stream(container, max_duration_s)
        yield from _checked_blocks(container, stream, rate, max_duration_s)


def _checked_blocks(
    container: InputContainer, stream: AudioStream, rate: int, max_duration_s: float | None
) -> Iterator[npt.NDArray[np.int16]]:
    max_samples = None if max_duration_s is None else int(max_duration_s * rate)
    total = 0
    resampler = _BlockResampler(rate)
    for frame in container.decode(stream):
        for chunk in resampler.add(frame):
            total += len(chunk)
            _check_budget(total, max_samples, max_duration_s)
            yield chunk
    for chunk in resampler.finish():
        total += len(chunk)
        _check_budget(total, max_samples, max_duration_s)
        yield chunk


@contextmanager
def _decode_errors() -> Iterator[None]:
    """FFmpeg's and PyAV's failures on a bad file as AudioDecodeError (the client's 400)."""
    try:
        yield
    except AudioDecodeError:
        raise
    except av.error.FFmpegError as err:
        # strerror only: str(err) names the file, a scratch path of the gateway's.
        raise AudioDecodeError(f"the audio could not be decoded: {err.strerror}") from err
    except (ValueError, IndexError, OverflowError, MemoryError) as err:
        raise AudioDecodeError(f"the audio could not be decoded: {err}") from err


def _open_input(source: str | bytes | io.BytesIO) -> InputContainer:
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    return av.open(source, mode="r", format=_known_container(source))


# The containers browsers record in, by their first bytes: naming the demuxer skips FFmpeg's
# probe of every format it knows. Anything else is probed as before.
_MAGIC: Final = ((b"\x1a\x45\xdf\xa3", "matroska"), (b"OggS", "ogg"))


def _known_container(source: str | io.BytesIO) -> str | None:
    if isinstance(source, io.BytesIO):
        head = source.getbuffer()[:4].tobytes()
    else:
        with open(source, "rb") as file:
            head = file.read(4)
    return next((name for magic, name in _MAGIC if head == magic), None)


def _check_budget(total: int, max_samples: int | None, max_duration_s: float | None) -> None:
    if max_samples is not None and total > max_samples:
        raise AudioDecodeError(f"the audio is longer than the {max_duration_s:.0f} s allowed")


def check_stream(container: InputContainer, max_duration_s: float | None) -> AudioStream:
    """The first audio stream, if PyAV can decode it within the limits; else AudioDecodeError.

    A stream whose codec context is missing is what FFmpeg opens for WAV format tags it does
    not know; decoding one crashes PyAV, so it never gets that far.
    """
    if len(container.streams) > MAX_STREAMS:
        raise AudioDecodeError(
            f"the file holds {len(container.streams)} streams ({MAX_STREAMS} at most accepted)"
        )
    if not container.streams.audio:
        raise AudioDecodeError("the file holds no audio stream")
    stream = container.streams.audio[0]
    codec = stream.codec_context
    if codec is None:
        raise AudioDecodeError("the audio stream uses a codec this gateway cannot decode")
    if not MIN_SAMPLE_RATE <= codec.sample_rate <= MAX_SAMPLE_RATE:
        raise AudioDecodeError(
            f"sample rate {codec.sample_rate} Hz is outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz"
        )
    if not 1 <= codec.channels <= MAX_CHANNELS:
        raise AudioDecodeError(f"{codec.channels} channels (1 to {MAX_CHANNELS} accepted)")
    # A WAV's declared length is not trusted: streaming writers put placeholders there (FFmpeg
    # would estimate 37 h for 0xFFFFFFFF) and a cut-off upload overstates it; its decoded
    # samples are counted against the budget instead.
    declared = None if container.format.name == "wav" else _declared_seconds(container, stream)
    if max_duration_s is not None and declared is not None and declared > max_duration_s:
        raise AudioDecodeError(
            f"the audio declares {declared:.0f} s, longer than the {max_duration_s:.0f} s allowed"
        )
    return stream


def _declared_seconds(container: InputContainer, stream: AudioStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


_BLOCK_SECONDS: Final = 2.0


class _BlockResampler:
    """Resamples decoded frames in blocks of about two seconds instead of one call per frame.

    Codec frames are 10-60 ms long; calling the resampler and NumPy per frame costs more than
    decoding itself. Blocks keep that overhead small while memory stays bounded.
    """

    def __init__(self, rate: int) -> None:
        self._resampler = AudioResampler(format="s16", layout="mono", rate=rate)
        self._pending: list[npt.NDArray[Any]] = []
        self._pending_samples = 0
        self._shape: tuple[str, str, int] | None = None

    def add(self, frame: av.AudioFrame) -> list[npt.NDArray[np.int16]]:
        """Queue a frame; resampled samples come out once a block is full."""
        shape = (frame.format.name, frame.layout.name, frame.sample_rate)
        out = self._flush() if self._shape not in (None, shape) else []
        self._shape = shape
        self._pending.append(_frame_samples(frame))
        self._pending_samples += frame.samples
        if self._pending_samples >= frame.sample_rate * _BLOCK_SECONDS:
            out += self._flush()
        return out

    def finish(self) -> list[npt.NDArray[np.int16]]:
        """Resample what is queued and drain the resampler's delay line."""
        return self._flush() + [_mono(out) for out in self._resampler.resample(None)]

    def _flush(self) -> list[npt.NDArray[np.int16]]:
        if not self._pending or self._shape is None:
            return []
        fmt, layout, rate = self._shape
        block = av.AudioFrame.from_ndarray(
            np.concatenate(self._pending, axis=1), format=fmt, layout=layout
        )
        block.sample_rate = rate
        self._pending = []
        self._pending_samples = 0
        return [_mono(out) for out in self._resampler.resample(block)]


# FFmpeg's sample formats (native byte order; a trailing "p" marks the planar layout).
_SAMPLE_DTYPES: Final = {"u8": "u1", "s16": "i2", "s32": "i4", "flt": "f4", "dbl": "f8"}


def _frame_samples(frame: av.AudioFrame) -> npt.NDArray[Any]:
    """`frame.to_ndarray()`, six times cheaper: views of the frame's planes (each keeps its
    frame alive) instead of PyAV's generic conversion, which cost a voice command 0.15 ms."""
    fmt = frame.format
    dtype = _SAMPLE_DTYPES.get(fmt.name.removesuffix("p") if fmt.is_planar else fmt.name)
    if dtype is None:
        return frame.to_ndarray()
    if not fmt.is_planar:
        count = frame.samples * frame.layout.nb_channels
        return np.frombuffer(frame.planes[0], dtype, count).reshape(1, count)
    planes = [np.frombuffer(plane, dtype, frame.samples) for plane in frame.planes]
    return planes[0].reshape(1, -1) if len(planes) == 1 else np.stack(planes)


def _mono(frame: av.AudioFrame) -> npt.NDArray[np.int16]:
    return np.asarray(frame.to_ndarray(), dtype=np.int16).reshape(-1)


_EMPTY: Final = np.zeros(0, dtype=np.int16)


def pcm_to_wav(samples: npt.NDArray[np.int16], rate: int) -> bytes:
    """Wrap mono s16 samples in a canonical 44-byte-header WAV."""
    return wav_header(rate, samples.size) + samples.astype("<i2", copy=False).tobytes()


_OPEN_SIZE: Final = 0xFFFFFFFF  # what streaming writers put in RIFF and data sizes


def wav_header(rate: int, n_samples: int | None) -> bytes:
    """The canonical 44-byte header of a mono s16 WAV; None leaves the sizes open, so audio
    can follow as it is made."""
    data = _OPEN_SIZE if n_samples is None else 2 * n_samples
    riff = _OPEN_SIZE if n_samples is None else 36 + data
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", riff, b"WAVE", b"fmt ", 16, 1, 1, rate, 2 * rate, 2, 16, b"data", data,
    )  # fmt: skip


def wav_to_pcm(data: bytes) -> tuple[npt.NDArray[np.int16], int]:
    """Read any WAV (int16, float32, extra chunks) as mono s16 samples and its rate."""
    try:
        with av.open(io.BytesIO(data), mode="r", format="wav") as container:
            rate = container.streams.audio[0].rate
    except (av.error.FFmpegError, IndexError) as err:
        raise AudioDecodeError(f"the WAV could not be read: {err}") from err
    return decode_to_pcm(data, rate=rate), rate


def change_speed(samples: npt.NDArray[np.int16], rate: int, speed: float) -> npt.NDArray[np.int16]:
    """Change tempo without changing pitch (FFmpeg's atempo; chained for factors beyond 0.5-2)."""
    if abs(speed - 1.0) < 1e-3 or samples.size == 0:
        return samples
    graph = Graph()
    source = graph.add_abuffer(
        format="s16", sample_rate=rate, layout="mono", time_base=Fraction(1, rate)
    )
    node = source
    for factor in _atempo_steps(speed):
        step = graph.add("atempo", f"{factor:.6f}")
        node.link_to(step)
        node = step
    sink = graph.add("abuffersink")
    node.link_to(sink)
    graph.configure()
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    frame.pts = 0
    graph.push(frame)
    graph.push(None)
    parts: list[npt.NDArray[np.int16]] = []
    while True:
        try:
            out = graph.pull()
        except (av.error.BlockingIOError, av.error.EOFError):
            break
        parts.append(np.asarray(out.to_ndarray(), dtype=np.int16).reshape(-1))
    return np.concatenate(parts).astype(np.int16, copy=False) if parts else _EMPTY


def _atempo_steps(speed: float) -> list[float]:
    steps: list[float] = []
    while speed > 2.0:
        steps.append(2.0)
        speed /= 2.0
    while speed < 0.5:
        steps.append(0.5)
        speed /= 0.5
    steps.append(speed)
    return steps


def content_type(fmt: str, rate: int) -> str:
    """The Content-Type for a speech format; raw PCM carries its rate, as Open WebUI reads it."""
    if fmt == "pcm":
        return f"audio/pcm;rate={rate};channels=1"
    return CONTENT_TYPES[fmt]


def encode_audio(samples: npt.NDArray[np.int16], rate: int, fmt: str) -> bytes:
    """Encode mono s16 samples as a complete file in one of the OpenAI speech formats."""
    if fmt == "wav":
        return pcm_to_wav(samples, rate)
    if fmt == "pcm":
        return samples.astype("<i2", copy=False).tobytes()
    encoder = StreamEncoder(fmt, rate)
    encoder.encode(samples)
    encoder.finish()
    # The whole buffer, not the streamed pieces: FLAC rewrites its header on close.
    return encoder.written


class StreamEncoder:
    """Encodes successive blocks of samples into one continuous stream of `fmt` bytes.

    Used sentence by sentence for streamed speech: each call returns the bytes ready so far.
    """

    def __init__(self, fmt: str, rate: int) -> None:
        if fmt not in SPEECH_FORMATS:
            raise ValueError(f"unknown audio format {fmt!r}")
        self.fmt = fmt
        self.rate = rate
        self._sent = 0
        self._header_sent = False
        self._buffer = io.BytesIO()
        self._container: av.container.OutputContainer | None = None
        self._stream: AudioStream | None = None
        self._resampler: AudioResampler | None = None
        if fmt in _ENCODERS:
            container_fmt, codec, sample_fmt, out_rate = _ENCODERS[fmt]
            self._container = av.open(self._buffer, mode="w", format=container_fmt)
            stream = self._container.add_stream(codec, rate=out_rate or rate)
            assert isinstance(stream, AudioStream)
            stream.layout = "mono"
            if fmt == "mp3":
                stream.bit_rate = 64000 if (out_rate or rate) <= 24000 else 128000
                # LAME's quality 7: about twice as fast as its default, transparent for speech.
                stream.codec_context.options = {"compression_level": "7"}
            self._stream = stream
            self._resampler = AudioResampler(
                format=sample_fmt, layout="mono", rate=out_rate or rate
            )
            self._pts = 0

    def encode(self, samples: npt.NDArray[np.int16]) -> bytes:
        """Feed samples; return the encoded bytes that are ready."""
        if self.fmt == "pcm":
            return samples.astype("<i2", copy=False).tobytes()
        if self.fmt == "wav":
            header = b"" if self._header_sent else wav_header(self.rate, None)
            self._header_sent = True
            return header + samples.astype("<i2", copy=False).tobytes()
        pcm = samples.astype(np.int16, copy=False)
        # Fed in ~0.5 s blocks: PyAV re-chunks each frame to the codec's frame size through a
        # FIFO that moves the remainder on every read, which is quadratic for one huge frame.
        step = max(self.rate // 2, 1)
        for start in range(0, pcm.size, step):
            frame = av.AudioFrame.from_ndarray(
                pcm[start : start + step].reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate = self.rate
            self._mux(frame)
        return self._take()

    def finish(self) -> bytes:
        """Flush the encoder and close the container; return the remaining bytes."""
        if self._container is None or self._stream is None:
            if self.fmt == "wav" and not self._header_sent:
                self._header_sent = True
                return wav_header(self.rate, None)
            return b""
        self._mux(None)
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        self._container = None
        return self._take()

    @property
    def written(self) -> bytes:
        """Everything the container wrote, including headers it rewrote on close."""
        return self._buffer.getvalue()

    def _mux(self, frame: av.AudioFrame | None) -> None:
        assert self._container is not None
        assert self._stream is not None
        assert self._resampler is not None
        for out in self._resampler.resample(frame):
            out.pts = self._pts
            self._pts += out.samples
            for packet in self._stream.encode(out):
                self._container.mux(packet)

    def _take(self) -> bytes:
        data = self._buffer.getvalue()
        fresh = data[self._sent :]
        self._sent = len(data)
        return fresh
