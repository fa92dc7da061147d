"""Real speech recognition for the Parakeet fake: pocketsphinx, in worker processes.

Parakeet TDT prints capitalised, punctuated text with word timestamps; pocketsphinx gives
lower-case words with 10 ms frame segments, which are shaped the same way here.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import signal
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from pocketsphinx import Decoder  # type: ignore[import-untyped]

_FRAME_SECONDS = 0.01
_FILLERS = re.compile(r"^(<s>|</s>|<sil>|\[.*\]|\+\+.*\+\+|\(NULL\))$")
_ALTERNATE = re.compile(r"\(\d+\)$")  # "and(2)": the second pronunciation of "and"


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Recognition:
    text: str
    words: list[Word]


# pocketsphinx holds the GIL while it decodes, so decoders in threads take turns: measured, two
# 20 s decodes in two threads took 2.07x one. A GPU server answers concurrent requests at once,
# so recognition runs in worker processes instead, each with its own decoder used by its one
# thread. Workers are spawned (not forked: the simulator's process has threads; no forkserver:
# its Unix socket is blocked in the HA test harness).
_worker_decoder: Decoder | None = None


def _ignore_ctrl_c() -> None:
    """Ctrl-C on `./scripts/demo` reaches its whole process group, these workers too: the
    simulator stops them itself (`Recognizer.close`), without a KeyboardInterrupt traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _decode_in_worker(pcm16: bytes) -> tuple[list[tuple[str, int, int]], float, float]:
    """(word, start frame, end frame) per segment, and when decoding began and ended."""
    global _worker_decoder  # noqa: PLW0603
    began = time.monotonic()  # CLOCK_MONOTONIC: comparable across processes on one host
    if _worker_decoder is None:
        # Without the flat-lexicon second pass and with a capped HMM count, decoding runs about
        # 40 % faster on a busy CPU while short commands come out the same.
        _worker_decoder = Decoder(samprate=16000, loglevel="FATAL", fwdflat=False, maxhmmpf=3000)
    decoder = _worker_decoder
    # The feature front end carries its noise estimate and cepstral means over from earlier
    # utterances: without a reset the same audio came out with other words or timings
    # depending on what this worker decoded before. Reset, it depends on the audio alone, for
    # 75 us, and recognises about as well (mean word overlap 0.88 against 0.90 on 16 flite
    # clips of the Magpie voices).
    decoder.reinit_feat()
    decoder.start_utt()
    decoder.process_raw(pcm16, full_utt=True)
    decoder.end_utt()
    segments = (
        [(seg.word, seg.start_frame, seg.end_frame) for seg in decoder.seg()]
        if decoder.hyp() is not None
        else []
    )
    return segments, began, time.monotonic()


class Recognizer:
    """Decodes up to `workers` recognitions at once, in worker processes started on first use."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("a recognizer needs at least one worker")
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._spans: list[tuple[float, float]] = []  # when each decode ran (for tests)

    @property
    def peak_concurrent(self) -> int:
        """Most decodes that were running at the same moment."""
        edges = sorted([(start, 1) for start, _ in self._spans]
                       + [(end, -1) for _, end in self._spans])  # fmt: skip
        running = peak = 0
        for _, step in edges:
            running += step
            peak = max(peak, running)
        return peak

    async def recognize(self, pcm16: bytes) -> Recognition:
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                max_workers=self._workers, mp_context=context, initializer=_ignore_ctrl_c
            )
        loop = asyncio.get_running_loop()
        segments, began, ended = await loop.run_in_executor(self._pool, _decode_in_worker, pcm16)
        self._spans.append((began, ended))
        words = [
            Word(
                _ALTERNATE.sub("", word),
                round(start * _FRAME_SECONDS, 2),
                round((end + 1) * _FRAME_SECONDS, 2),
            )
            for word, start, end in segments
            if not _FILLERS.match(word)
        ]
        return _like_parakeet(words)

    def close(self) -> None:
        """Stop the worker processes (decodes are short: wait for the running ones)."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=True, cancel_futures=True)


def _like_parakeet(words: list[Word]) -> Recognition:
    """Capitalise the first word and end with a full stop, as Parakeet's output does."""
    if not words:
        return Recognition("", [])
    shaped = list(words)
    first = shaped[0]
    shaped[0] = Word(first.word[:1].upper() + first.word[1:], first.start, first.end)
    last = shaped[-1]
    shaped[-1] = Word(last.word + ".", last.start, last.end)
    return Recognition(" ".join(word.word for word in shaped), shaped)
