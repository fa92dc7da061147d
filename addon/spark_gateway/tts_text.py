"""Splitting speech input into Magpie-sized requests along sentence boundaries."""

from __future__ import annotations

from collections.abc import Iterator

from sentence_stream import stream_to_sentences


def speech_chunks(text: str, max_chars: int) -> list[str]:
    """Sentences packed greedily into chunks of at most `max_chars` characters.

    A sentence longer than the limit is cut between words (or hard-cut inside a word that is
    itself too long), so no chunk ever exceeds what Magpie accepts.
    """
    chunks: list[str] = []
    current = ""
    for sentence in stream_to_sentences([text]):
        for piece in _fit(sentence.strip(), max_chars):
            if not piece:
                continue
            if current and len(current) + 1 + len(piece) <= max_chars:
                current = f"{current} {piece}"
            else:
                if current:
                    chunks.append(current)
                current = piece
    if current:
        chunks.append(current)
    return chunks


def sentences(text: str, max_chars: int) -> list[str]:
    """One chunk per sentence (for streaming: the first audio comes after one sentence)."""
    return [p for s in stream_to_sentences([text]) for p in _fit(s.strip(), max_chars) if p]


def _fit(sentence: str, max_chars: int) -> Iterator[str]:
    if len(sentence) <= max_chars:
        yield sentence
        return
    current = ""
    for raw_word in sentence.split():
        word = raw_word
        while len(word) > max_chars:
            if current:
                yield current
                current = ""
            yield word[:max_chars]
            word = word[max_chars:]
        if current and len(current) + 1 + len(word) > max_chars:
            yield current
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        yield current


def split_in_half(text: str) -> tuple[str, str] | None:
    """Cut at the word boundary nearest the middle; None for a single word."""
    middle = len(text) // 2
    spaces = [i for i, ch in enumerate(text) if ch == " "]
    if not spaces:
        return None
    cut = min(spaces, key=lambda i: abs(i - middle))
    return text[:cut].strip(), text[cut + 1 :].strip()
