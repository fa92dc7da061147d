"""Real speech recognition for the Parakeet fake: pocketsphinx, run off the event loop.

Parakeet TDT prints capitalised, punctuated text with word timestamps; pocketsphinx gives
lower-case words with 10 ms frame segments, which are shaped the same way here.
"""

from __future__ import annotations

import asyncio
import re
import threading
from concurrent.futures import Executor
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


# One decoder per process, shared by every simulated cluster: loading the acoustic model and
# dictionary takes about a second, and decoders are not thread-safe, hence the lock.
_DECODER_LOCK = threading.Lock()
_decoder: Decoder | None = None


def _shared_decoder() -> Decoder:
    global _decoder  # noqa: PLW0603
    if _decoder is None:
        # Without the flat-lexicon second pass and with a capped HMM count, decoding runs about
        # 40 % faster on a busy CPU while short commands come out the same.
        _decoder = Decoder(samprate=16000, loglevel="FATAL", fwdflat=False, maxhmmpf=3000)
    return _decoder


class Recognizer:
    """Runs recognitions on the given executor, never on the event loop."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    async def recognize(self, pcm16: bytes) -> Recognition:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._recognize, pcm16)

    def _recognize(self, pcm16: bytes) -> Recognition:
        with _DECODER_LOCK:
            decoder = _shared_decoder()
            decoder.start_utt()
            decoder.process_raw(pcm16, full_utt=True)
            decoder.end_utt()
            hypothesis = decoder.hyp()
            segments = list(decoder.seg()) if hypothesis is not None else []
        words = [
            Word(
                _ALTERNATE.sub("", seg.word),
                round(seg.start_frame * _FRAME_SECONDS, 2),
                round((seg.end_frame + 1) * _FRAME_SECONDS, 2),
            )
            for seg in segments
            if not _FILLERS.match(seg.word)
        ]
        return _like_parakeet(words)


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
