"""Decoding untrusted audio in a throwaway process per upload.

FFmpeg and PyAV are C code fed with bytes from any client. A file that crashes them must cost
one request, not the gateway, so every decode runs in its own process forked from a server
that has already imported PyAV and NumPy (multiprocessing's forkserver: a few milliseconds per
fork). The process reads the spooled upload, writes 16 kHz mono WAV next to it and exits, which
also hands all of its memory back. A crash, a timeout or a cancelled request kills it; the
client gets a 400 naming the problem (or nothing, if it went away).

At most `workers` decodes run at once; further requests wait for a slot.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.forkserver
import os
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from .audio_codec import TARGET_RATE, AudioDecodeError, decode_file_to_wav

_CONTEXT: Final = multiprocessing.get_context("forkserver")
# Everything a decoder needs, imported once in the fork server: each decoder is a fork of it.
_CONTEXT.set_forkserver_preload(["numpy", "av", "av.audio.resampler", "spark_gateway.decoder"])
_PACKAGE_ROOT: Final = str(Path(__file__).resolve().parents[1])
_WAV_HEADER_BYTES: Final = 44  # what wave.open writes for mono s16


@dataclass(frozen=True, slots=True)
class DecodedFile:
    """Decoded audio on disk: a canonical 16 kHz mono s16 WAV and its sample count."""

    path: Path
    n_samples: int

    @property
    def duration_s(self) -> float:
        return self.n_samples / TARGET_RATE

    def read_wav(self) -> bytes:
        """The whole WAV file (blocking)."""
        return self.path.read_bytes()

    def samples(self) -> PcmFile:
        """The samples, read from the file slice by slice rather than held in memory."""
        return PcmFile(self.path, self.n_samples)


class PcmFile:
    """Read-only 16 kHz mono s16 samples on disk that slice like a NumPy array.

    Reads, not a memory map: mapped pages stay resident while the mapping lives, so a
    four-hour recording read once for its chunk plan would sit in memory for the whole request.
    """

    def __init__(self, path: Path, n_samples: int) -> None:
        self.path = path
        self.n_samples = n_samples

    def __len__(self) -> int:
        return self.n_samples

    def __getitem__(self, index: slice) -> npt.NDArray[np.int16]:
        if not isinstance(index, slice):
            raise TypeError("PcmFile supports slices only")
        start, stop, step = index.indices(self.n_samples)
        if step != 1:
            raise ValueError("PcmFile supports contiguous slices only")
        count = max(stop - start, 0)
        with self.path.open("rb") as file:
            file.seek(_WAV_HEADER_BYTES + 2 * start)
            data = file.read(2 * count)
        return np.frombuffer(data, dtype="<i2").astype(np.int16)


class AudioBudgetExhausted(Exception):
    """No room for more decoded audio within the wait allowed."""


class AudioInFlight:
    """A budget of decoded audio (seconds at 16 kHz) held by requests at once.

    Decoded audio lives on disk while its request runs; this bounds that disk use and the
    work queued behind it, whatever the number of requests. A decode takes the whole
    per-request maximum (its length is unknown until it ends), then keeps only what it made.
    """

    def __init__(self, capacity_s: float) -> None:
        self.capacity_s = capacity_s
        self.free_s = capacity_s
        self._changed = asyncio.Event()

    async def take(self, seconds: float, *, wait_s: float) -> None:
        """Reserve `seconds`, waiting up to `wait_s` for room; AudioBudgetExhausted after that."""
        try:
            async with asyncio.timeout(wait_s):
                while self.free_s < seconds:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError as err:
            raise AudioBudgetExhausted from err
        self.free_s -= seconds

    def give(self, seconds: float) -> None:
        """Return `seconds` to the budget."""
        self.free_s = min(self.capacity_s, self.free_s + seconds)
        self._changed.set()


class AudioDecoder:
    """Runs `decode_file_to_wav` in a fresh process, `workers` at a time."""

    def __init__(self, *, workers: int, timeout_s: float) -> None:
        self._slots = asyncio.Semaphore(workers)
        self._timeout_s = timeout_s
        self._starting: asyncio.Task[None] | None = None

    def start_soon(self) -> None:
        """Start the fork server in the background: the first upload need not wait for it,
        and the gateway answers while it imports."""
        self._starting = asyncio.get_running_loop().create_task(self.start())

    async def stop(self) -> None:
        """Wait for a background start still running (a thread cannot be cancelled)."""
        if self._starting is not None:
            await asyncio.gather(self._starting, return_exceptions=True)

    @staticmethod
    async def start() -> None:
        """Start the fork server now, so the first upload does not wait for its imports."""
        # Python 3.13.0's fork server ignores the parent's sys.path; the environment it
        # inherits is how it finds this package to preload it.
        paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
        if _PACKAGE_ROOT not in paths:
            os.environ["PYTHONPATH"] = os.pathsep.join([_PACKAGE_ROOT, *filter(None, paths)])
        await asyncio.to_thread(multiprocessing.forkserver.ensure_running)

    async def decode(self, source: Path, target: Path, *, max_duration_s: float) -> DecodedFile:
        """Decode `source` into `target`; AudioDecodeError for anything the decoder refused."""
        async with self._slots:
            n_samples = await self._run(source, target, max_duration_s)
        return DecodedFile(target, n_samples)

    async def _run(self, source: Path, target: Path, max_duration_s: float) -> int:
        receiver, sender = _CONTEXT.Pipe(duplex=False)
        process = _CONTEXT.Process(
            target=_decode_job,
            args=(str(source), str(target), max_duration_s, sender),
            name="spark-gateway-decoder",
            daemon=True,
        )
        try:
            process.start()
            sender.close()
            try:
                async with asyncio.timeout(self._timeout_s):
                    await _exited(process.sentinel)
            except TimeoutError as err:
                raise AudioDecodeError(
                    f"decoding took longer than {self._timeout_s:.0f} s"
                ) from err
            outcome = _result(receiver)
        finally:
            if process.pid is not None:
                if process.is_alive():
                    process.kill()
                process.join()  # at once: it has exited or was just killed
            sender.close()
            receiver.close()
        if outcome is None:
            raise AudioDecodeError(f"the audio crashed the decoder ({_describe(process.exitcode)})")
        kind, value = outcome
        if kind == "error":
            raise AudioDecodeError(str(value))
        return int(str(value))


async def _exited(sentinel: int) -> None:
    """Wait, without a thread, until the process behind `sentinel` has exited."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def exited() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(sentinel, exited)
    try:
        await done
    finally:
        loop.remove_reader(sentinel)


def _result(receiver: Connection) -> tuple[str, object] | None:
    """What the process sent before exiting; None when it died without a word."""
    try:
        outcome: tuple[str, object] | None = receiver.recv() if receiver.poll() else None
    except EOFError:
        return None
    return outcome


def _describe(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return signal.Signals(-exitcode).name
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit status {exitcode}"


def _decode_job(source: str, target: str, max_duration_s: float, result: Connection) -> None:
    """The decoder process: decode, report ("ok", samples) or ("error", message), exit."""
    try:
        n_samples = decode_file_to_wav(source, target, max_duration_s=max_duration_s)
    except AudioDecodeError as err:
        result.send(("error", str(err)))
    except Exception as err:
        result.send(("error", f"the audio could not be decoded: {type(err).__name__}: {err}"))
    else:
        result.send(("ok", n_samples))
    finally:
        result.close()
