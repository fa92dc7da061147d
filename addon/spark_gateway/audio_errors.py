"""The error every audio reader raises for a file the client got wrong."""

from __future__ import annotations


class AudioDecodeError(ValueError):
    """The bytes are empty, not audio, or damaged beyond decoding (the client's fault: 400)."""
