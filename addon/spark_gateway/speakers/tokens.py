"""Join ASR tokens into text: single spaces, none before punctuation.

Parakeet variants differ: some emit tokens with a leading space, some without, some with
stray tabs or newlines. The joined text must be identical in every case. The tokens are
joined once and fixed with three regular expressions (C speed: a 3-hour meeting has ~30,000
tokens).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_WHITESPACE = re.compile(r"[ \t\n\r\f\v\u00a0]+")
_SEPARATOR = "\x00"  # between groups in `join_token_groups`; never inside ASR text
_AROUND_SEPARATOR = re.compile(r" ?\x00 ?")
# A token starting with closing punctuation, or a split-off contraction ("do" + "n't"),
# attaches to the previous token.
_BEFORE_CLOSING = re.compile(r" (?=[.,;:!?%)\]}…»])")
_BEFORE_CONTRACTION = re.compile(r" (?=(?:n't|'s|'re|'ve|'ll|'d|'m)(?: |$))", re.IGNORECASE)
# After opening punctuation the next token attaches.
_AFTER_OPENING = re.compile(r"(?<=[(\[{«¿¡]) ")


def _fix(text: str) -> str:
    text = _WHITESPACE.sub(" ", text)
    text = _BEFORE_CLOSING.sub("", text)
    text = _BEFORE_CONTRACTION.sub("", text)
    return _AFTER_OPENING.sub("", text)


def join_tokens(tokens: Iterable[str]) -> str:
    """Return the tokens joined as readable text."""
    return _fix(" ".join(tokens)).strip()


def join_token_groups(groups: Iterable[Sequence[str]]) -> list[str]:
    """`join_tokens` for many groups at once (one regex pass over all of them)."""
    joined = _SEPARATOR.join(" ".join(group).replace(_SEPARATOR, " ") for group in groups)
    return [
        part.strip() for part in _AROUND_SEPARATOR.sub(_SEPARATOR, _fix(joined)).split(_SEPARATOR)
    ]
