"""Cut reply text into pieces Magpie can synthesize one request at a time.

Sentences come from `sentence_stream` so a streamed reply can be spoken as soon as its first
sentence is complete. Magpie refuses more than 2,000 characters and more than about 20 seconds of
speech per request, so over-long sentences are cut again at clause and then word boundaries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sentence_stream import SentenceBoundaryDetector

MAGPIE_MAX_CHARS = 2000
MAGPIE_MAX_SECONDS = 20.0
# Speech runs at 12-15 characters a second; 10 leaves room for slow and "calm" voice styles.
_CHARS_PER_SECOND = 10.0
MAX_PIECE_CHARS = min(MAGPIE_MAX_CHARS, int(MAGPIE_MAX_SECONDS * _CHARS_PER_SECOND))

_CLAUSE_END = re.compile(r"(?<=[,;:\u2014])\s+")


def split_long_sentence(sentence: str, limit: int = MAX_PIECE_CHARS) -> list[str]:
    """Cut one sentence into pieces of at most `limit` characters, preferring clause ends."""
    sentence = " ".join(sentence.split())
    if len(sentence) <= limit:
        return [sentence] if sentence else []
    pieces: list[str] = []
    current = ""
    for clause in _CLAUSE_END.split(sentence):
        for part in _cut_words(clause, limit):
            candidate = f"{current} {part}" if current else part
            if len(candidate) <= limit:
                current = candidate
            else:
                pieces.append(current)
                current = part
    if current:
        pieces.append(current)
    return pieces


def _cut_words(text: str, limit: int) -> Iterable[str]:
    if len(text) <= limit:
        yield text
        return
    current = ""
    for whole_word in text.split(" "):
        word = whole_word
        # A single "word" longer than the limit (a URL, a hash) is cut where it must be.
        while len(word) > limit:
            if current:
                yield current
                current = ""
            yield word[:limit]
            word = word[limit:]
        candidate = f"{current} {word}" if current else word
        if len(candidate) <= limit:
            current = candidate
        else:
            yield current
            current = word
    if current:
        yield current


class SpeechTextSplitter:
    """Turn streamed text into synthesis-sized pieces, in order, as soon as they are complete."""

    def __init__(self, limit: int = MAX_PIECE_CHARS) -> None:
        self._detector = SentenceBoundaryDetector()
        self._limit = limit

    def add(self, text: str) -> list[str]:
        """Feed more text; return the pieces of every sentence it completed."""
        return [
            piece
            for sentence in self._detector.add_chunk(text)
            for piece in split_long_sentence(sentence, self._limit)
        ]

    def finish(self) -> list[str]:
        """End the stream; return the pieces of whatever text is left."""
        return split_long_sentence(self._detector.finish(), self._limit)


def split_text(text: str, limit: int = MAX_PIECE_CHARS) -> list[str]:
    """Split a whole text into synthesis-sized pieces."""
    splitter = SpeechTextSplitter(limit)
    return [*splitter.add(text), *splitter.finish()]
