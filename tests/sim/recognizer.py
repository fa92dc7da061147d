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

from pocketsphinx import Decoder

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


class Recognizer:
    """One pocketsphinx decoder shared under a lock (decoders are not thread-safe)."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self._decoder: Decoder | None = None
        self._lock = threading.Lock()

    async def recognize(self, pcm16: bytes) -> Recognition:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._recognize, pcm16)

    def _recognize(self, pcm16: bytes) -> Recognition:
        with self._lock:
            if self._decoder is None:
                self._decoder = Decoder(samprate=16000, loglevel="FATAL")
            decoder = self._decoder
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
