"""Deterministic "model output": the prompt's own words echoed back, then seeded filler words.

Same prompt, same text, every run; tokens are whole words with a leading space, like a BPE
tokenizer's most common pieces.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from typing import Any

_FILLER = tuple(
    " ".join(
        (
            "the cluster is ready and the model answers quickly while the GPU stays cool",
            "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor",
            "incididunt ut labore et dolore magna aliqua",
        )
    ).split(" ")
)
_WORD = re.compile(r"\S+")


def count_tokens(text: str) -> int:
    """Rough token count: whitespace-separated words, at least one."""
    return max(1, len(_WORD.findall(text)))


def messages_text(messages: list[Any]) -> str:
    parts: list[str] = []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(
                str(item.get("text", ""))
                for item in content
                if isinstance(item, dict) and item.get("type") == "text"
            )
    return "\n".join(parts)


def chat_prompt_tokens(messages: list[Any]) -> int:
    # Chat templates add a few special tokens around each message.
    return count_tokens(messages_text(messages)) + 4 * len(messages)


def generate_tokens(prompt: str, max_tokens: int) -> list[str]:
    """The reply's tokens: the last prompt line's words (up to 12), then seeded filler."""
    stripped = prompt.strip()
    last_line = stripped.splitlines()[-1] if stripped else ""
    echoed = _WORD.findall(last_line)[:12]
    seed = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:8], "big")
    rng = random.Random(seed)
    words = ["You", "said:", *echoed]
    while len(words) < max_tokens:
        words.append(rng.choice(_FILLER))
    return [(" " if index else "") + word for index, word in enumerate(words[:max_tokens])]


def embedding(text: str, dimensions: int = 384) -> list[float]:
    """A unit vector derived from the text's hash: equal texts, equal vectors."""
    digest = b""
    counter = 0
    while len(digest) < dimensions * 2:
        digest += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    raw = [
        int.from_bytes(digest[i * 2 : i * 2 + 2], "big") / 32767.5 - 1.0 for i in range(dimensions)
    ]
    norm = math.sqrt(sum(value * value for value in raw)) or 1.0
    return [value / norm for value in raw]
