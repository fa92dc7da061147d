"""Decoding untrusted audio in decoder processes, never in the gateway's own.

FFmpeg and PyAV are C code fed with bytes from any client. A file that crashes them must cost
one request, not the gateway, so every decode (and every remux of Opus into Ogg, which parses
the file just the same) runs in a separate process forked from a server that has already
imported PyAV and NumPy (multiprocessing's forkserver). A decoder takes the upload (its bytes
over the pipe when short, else its spool file) and answers with 16 kHz mono WAV, or Ogg/Opus
where `parakeet_formats.py` says so: bytes over the pipe for a short one, else a file next to
the upload. It works under an address-space cap and a per-job CPU-time limit of its own. A
crash, a timeout or a cancelled request kills it; the client gets a 400 naming the problem (or
nothing, if it went away).

Decoders live across uploads: starting a process per upload cost 15-20 ms on a quiet 2-core
machine (up to 250 ms under load) against about 3 ms of decoding a 1 s voice command. What
a shared process could carry from one upload to the next is bounded: a decoder is replaced
after any upload it refused (a malformed file may have left it in a bad state), after any
crash or timeout, and after `_JOBS_PER_WORKER` clean decodes.

At most `workers` decodes run at once; further requests wait for a slot.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import multiprocessing.forkserver
import multiprocessing.process
import os
import resource
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from .audio_codec import (
    TARGET_RATE,
    AudioDecodeError,
    DecodedWav,
    convert_for_parakeet,
    decode_to_wav,
)
from .heap import keep_large_buffers_out_of_the_heap
from .opus_remux import RemuxedOgg
from .parakeet_formats import OGG_OPUS, WAV_16K, ParakeetAudio

_CONTEXT: Final = multiprocessing.get_context("forkserver")
# Everything a decoder needs, imported once in the fork server: each decoder is a fork of it.
_CONTEXT.set_forkserver_preload(["numpy", "av", "av.audio.resampler", "spark_gateway.decoder"])
_PACKAGE_ROOT: Final = str(Path(__file__).resolve().parents[1])
_WAV_HEADER_BYTES: Final = 44  # audio_codec.wav_header's canonical header
_JOBS_PER_WORKER: Final = 100  # then the process is replaced, whatever it may have kept
_JOB_MEMORY_BYTES: Final = 512 * 1024 * 1024  # address space a decoder may add to its own


@dataclass(frozen=True, slots=True)
class DecodedFile:
    """Decoded audio: a canonical 16 kHz mono s16 WAV and its sample count.

    The WAV is a file on disk, or bytes for a short upload that needed no decoding (kept in
    memory: no scratch file to write, read back and remove for a voice command).
    """

    wav: Path | bytes
    n_samples: int

    @property
    def duration_s(self) -> float:
        return self.n_samples / TARGET_RATE

    def read_wav(self) -> bytes:
        """The whole WAV file (blocking)."""
        return self.wav if isinstance(self.wav, bytes) else self.wav.read_bytes()

    def samples(self) -> PcmFile:
        """The samples, read from the file slice by slice rather than held in memory."""
        return PcmFile(self.wav, self.n_samples)

    def for_parakeet(self) -> ParakeetAudio:
        """This WAV as the upload Parakeet is sent."""
        return ParakeetAudio(self.wav, WAV_16K, self.duration_s)


class PcmFile:
    """Read-only 16 kHz mono s16 samples on disk that slice like a NumPy array.

    Reads, not a memory map: mapped pages stay resident while the mapping lives, so a
    four-hour recording read once for its chunk plan would sit in memory for the whole request.
    """

    def __init__(self, wav: Path | bytes, n_samples: int) -> None:
        self.wav = wav
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
        if isinstance(self.wav, bytes):
            data = self.wav[_WAV_HEADER_BYTES + 2 * start : _WAV_HEADER_BYTES + 2 * stop]
        else:
            with self.wav.open("rb") as file:
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
        if self.free_s >= seconds:  # the usual case: no timer to arm and cancel
            self.free_s -= seconds
            return
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
    """Runs `decode_to_wav` or `convert_for_parakeet` in up to `workers` long-lived decoder
    processes."""

    def __init__(self, *, workers: int, timeout_s: float) -> None:
        self._slots = asyncio.Semaphore(workers)
        self._timeout_s = timeout_s
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._starting: asyncio.Task[None] | None = None
        self._stopped = False

    @property
    def busy_pids(self) -> list[int]:
        """Process ids of the decoders working on an upload now."""
        return [worker.pid for worker in self._busy]

    @property
    def idle_pids(self) -> list[int]:
        """Process ids of the decoders waiting for an upload."""
        return [worker.pid for worker in self._idle]

    def start_soon(self) -> None:
        """Start the fork server and one decoder in the background: the first upload need
        not wait for them, and the gateway answers while they import."""
        self._starting = asyncio.get_running_loop().create_task(self._warm_up())

    async def stop(self) -> None:
        """Stop every decoder (after a background start still running: threads cannot be
        cancelled)."""
        self._stopped = True
        if self._starting is not None:
            await asyncio.gather(self._starting, return_exceptions=True)
        for worker in [*self._idle, *self._busy]:
            worker.kill()
        self._idle.clear()

    async def _warm_up(self) -> None:
        await self.start()
        if not self._idle:
            self._idle.append(await _Worker.start())

    @staticmethod
    async def start() -> None:
        """Start the fork server now, so the first upload does not wait for its imports."""
        # Python 3.13.0's fork server ignores the parent's sys.path; the environment it
        # inherits is how it finds this package to preload it.
        paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
        if _PACKAGE_ROOT not in paths:
            os.environ["PYTHONPATH"] = os.pathsep.join([_PACKAGE_ROOT, *filter(None, paths)])
        await asyncio.to_thread(multiprocessing.forkserver.ensure_running)

    async def decode(
        self, source: Path | bytes, target: Path, *, max_duration_s: float
    ) -> DecodedFile:
        """Decode `source` (a file, or a short upload's bytes) to 16 kHz mono WAV: bytes when
        short, else the file `target`; AudioDecodeError for anything the decoder refused."""
        result = await self._job(_Job(source, target, max_duration_s, remux=False))
        if not isinstance(result, DecodedWav):
            raise AudioDecodeError("the decoder answered with something other than a WAV")
        return _decoded_file(result, target)

    async def for_parakeet(
        self, source: Path | bytes, target: Path, *, max_duration_s: float
    ) -> ParakeetAudio:
        """`source` in the form Parakeet is sent (`parakeet_formats.py`): Opus copied into Ogg,
        anything else decoded to 16 kHz mono WAV; bytes for a short upload given as bytes, else
        the file `target`."""
        result = await self._job(_Job(source, target, max_duration_s, remux=True))
        if isinstance(result, RemuxedOgg):
            ogg = target if result.ogg is None else result.ogg
            return ParakeetAudio(ogg, OGG_OPUS, result.duration_s)
        return _decoded_file(result, target).for_parakeet()

    async def _job(self, job: _Job) -> DecodedWav | RemuxedOgg:
        async with self._slots:
            try:
                return await self._run_on(await self._take(), job)
            except _DiedWhileIdle:
                # Killed between jobs (the OOM killer, an operator) before its death showed:
                # the upload never reached it, so it is no fault of the audio. A new one takes it.
                return await self._run_on(await self._take(), job)

    async def _run_on(self, worker: _Worker, job: _Job) -> DecodedWav | RemuxedOgg:
        self._busy.add(worker)
        reusable = False
        try:
            result = await worker.run(job, self._timeout_s)
            # Only a clean decode keeps the process: one that refused a file, crashed,
            # timed out or was cancelled mid-job is replaced.
            reusable = worker.jobs < _JOBS_PER_WORKER
        finally:
            self._busy.discard(worker)
            if reusable and not self._stopped:
                self._idle.append(worker)
            else:
                worker.kill()
                self._refill_soon()
        return result

    def _refill_soon(self) -> None:
        """Start a replacement in the background, so the next upload finds a decoder ready."""
        starting = self._starting is not None and not self._starting.done()
        if self._idle or starting or self._stopped:
            return
        self._starting = asyncio.get_running_loop().create_task(self._warm_up())

    async def _take(self) -> _Worker:
        """An idle decoder still alive, the one being started, or a new one."""
        while True:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    return worker
                worker.kill()  # died while idle (killed from outside): reap it
            if self._starting is None or self._starting.done():
                return await _Worker.start()
            await asyncio.wait([self._starting])  # should it fail, the loop starts one


def _decoded_file(result: DecodedWav, target: Path) -> DecodedFile:
    return DecodedFile(target if result.wav is None else result.wav, result.n_samples)


@dataclass(frozen=True, slots=True)
class _Job:
    """One upload for a decoder: decode it to WAV, or (`remux`) convert it for Parakeet."""

    source: Path | bytes
    target: Path
    max_duration_s: float
    remux: bool


class _DiedWhileIdle(AudioDecodeError):
    """The decoder was gone before the job reached it."""

    def __init__(self, exitcode: int | None) -> None:
        super().__init__(f"the decoder had died ({_describe(exitcode)}) before the audio came")


class _Worker:
    """One decoder process and the pipe it takes jobs on."""

    def __init__(self, process: multiprocessing.process.BaseProcess, jobs: Connection) -> None:
        self.process = process
        self.pid = process.pid or 0
        self.jobs = 0
        self._pipe = jobs

    @classmethod
    async def start(cls) -> _Worker:
        """Fork a decoder from the fork server (in a thread: it waits on the server)."""
        ours, theirs = _CONTEXT.Pipe(duplex=True)
        process = _CONTEXT.Process(
            target=_serve, args=(theirs,), name="spark-gateway-decoder", daemon=True
        )
        try:
            await asyncio.to_thread(process.start)
        finally:
            theirs.close()
        return cls(process, ours)

    def alive(self) -> bool:
        return self.process.is_alive()

    async def run(self, job: _Job, timeout_s: float) -> DecodedWav | RemuxedOgg:
        """One job; AudioDecodeError when refused, timed out or crashed (then the process is
        gone or must go: only a clean success leaves it usable)."""
        self.jobs += 1
        source = job.source if isinstance(job.source, bytes) else str(job.source)
        try:
            self._pipe.send((source, str(job.target), job.max_duration_s, timeout_s, job.remux))
        except (BrokenPipeError, ConnectionResetError) as err:
            self.kill()
            raise _DiedWhileIdle(self.process.exitcode) from err
        try:
            async with asyncio.timeout(timeout_s):
                await _readable(self._pipe.fileno(), self.process.sentinel)
            outcome = _result(self._pipe)
        except TimeoutError as err:
            self.kill()
            raise AudioDecodeError(f"decoding took longer than {timeout_s:.0f} s") from err
        except (BrokenPipeError, ConnectionResetError):
            outcome = None  # it died with the job
        if outcome is None:
            self.kill()
            raise AudioDecodeError(
                f"the audio crashed the decoder ({_describe(self.process.exitcode)})"
            )
        kind, value = outcome
        if kind == "error" or not isinstance(value, DecodedWav | RemuxedOgg):
            raise AudioDecodeError(str(value))
        return value

    def kill(self) -> None:
        """Stop the process at once and reap it."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self._pipe.close()


async def _readable(*fds: int) -> None:
    """Wait, without a thread, until any of `fds` is readable (a reply, or the process gone)."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def ready() -> None:
        if not done.done():
            done.set_result(None)

    for fd in fds:
        loop.add_reader(fd, ready)
    try:
        await done
    finally:
        for fd in fds:
            loop.remove_reader(fd)


def _result(receiver: Connection) -> tuple[str, object] | None:
    """The reply waiting on the pipe; None when the process died without one."""
    try:
        outcome: tuple[str, object] | None = receiver.recv() if receiver.poll() else None
    except (EOFError, OSError):
        return None
    return outcome


def _describe(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return signal.Signals(-exitcode).name
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit status {exitcode}"


def _serve(jobs: Connection) -> None:
    """The decoder process: take jobs until the gateway closes the pipe.

    Each job runs under a CPU-time limit (SIGXCPU ends the process past it) and the whole
    process under an address-space cap above what it maps at start, so a hostile file that
    makes FFmpeg allocate or spin ends this process, never the gateway. Replies are
    ("ok", DecodedWav | RemuxedOgg) or ("error", message).
    """
    keep_large_buffers_out_of_the_heap()  # a long decode's blocks go back to the system
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash leaves no core file
    base = _mapped_bytes()
    resource.setrlimit(resource.RLIMIT_AS, (base + _JOB_MEMORY_BYTES, base + _JOB_MEMORY_BYTES))
    while True:
        try:
            source, target, max_duration_s, timeout_s, remux = jobs.recv()
        except EOFError:
            return
        used = resource.getrusage(resource.RUSAGE_SELF)
        cpu_cap = math.ceil(used.ru_utime + used.ru_stime + timeout_s) + 1
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        if hard != resource.RLIM_INFINITY:
            cpu_cap = min(cpu_cap, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_cap, hard))
        try:
            result: DecodedWav | RemuxedOgg
            if remux:
                result = convert_for_parakeet(
                    source, spill_to=target, max_duration_s=max_duration_s
                )
            else:
                result = decode_to_wav(source, spill_to=target, max_duration_s=max_duration_s)
        except AudioDecodeError as err:
            jobs.send(("error", str(err)))
        except Exception as err:
            jobs.send(("error", f"the audio could not be decoded: {type(err).__name__}: {err}"))
        else:
            jobs.send(("ok", result))


def _mapped_bytes() -> int:
    """This process's virtual size now (what the address-space cap is added to)."""
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[0]) * resource.getpagesize()
