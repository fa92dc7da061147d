"""Join ASR tokens into text: single spaces, none before punctuation.

Parakeet variants differ: some emit tokens with a leading space, some without, some with
stray tabs or newlines. The joined text must be identical in every case.
"""

from __future__ import annotations

from collections.abc import Iterable

# Punctuation that attaches to the previous token.
_CLOSING = frozenset(".,;:!?%)]}…»")
_CONTRACTIONS = frozenset({"'s", "'re", "'ve", "'ll", "'d", "'m", "n't"})
# Punctuation after which the next token attaches without a space.
_OPENING = frozenset("([{«¿¡")


def join_tokens(tokens: Iterable[str]) -> str:
    """Return the tokens joined as readable text."""
    parts: list[str] = []
    attach_next = False
    for raw in tokens:
        token = " ".join(raw.split())
        if not token:
            continue
        if parts and not attach_next and not _attaches_left(token):
            parts.append(" ")
        parts.append(token)
        attach_next = token[-1] in _OPENING
    return "".join(parts)


def _attaches_left(token: str) -> bool:
    # Contractions split off by sub-word tokenizers ("do" + "n't") attach as well.
    return token[0] in _CLOSING or token.lower() in _CONTRACTIONS
