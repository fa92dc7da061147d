"""A strict, quick reading of a small multipart/form-data body held in memory.

aiohttp's streaming reader takes several awaits per part and parses each part's
Content-Disposition with a parser that rebuilds its escape table on every call: about a third
of what the gateway adds to a voice command. A body of up to 256 KiB with a known length (what
the OpenAI SDK, Open WebUI and browsers send) is read whole and split here instead, in the
plainest shape RFC 7578 allows and nothing more: no preamble or epilogue, part headers limited
to one `Content-Disposition: form-data; name="..."[; filename="..."]` and at most one
`Content-Type` (on a text field, no parameter but a charset), no `_charset_` field. For
anything else `split_form` returns None and the caller gives the same bytes to aiohttp's
reader, so the two readings agree whenever this one answers (a test holds them to it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

SMALL_BODY_BYTES: Final = 256 * 1024

# A header value holds no control characters but tab (RFC 9110 field-value; aiohttp 3.14 refuses
# them, so such a part is left to aiohttp's reader).
_HEADER_LINE: Final = re.compile(
    rb"(content-disposition|content-type):[ \t]*([\t\x20-\x7e\x80-\xff]*)", re.I
)
_DISPOSITION: Final = re.compile(r'form-data; ?name="([^"\\;=/]*)"(?:; ?filename="([^"\\;=]*)")?')
_MIME_CHARS: Final = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
# A text field's type: a bare media type, or one with a charset (aiohttp's FormData labels
# non-ASCII values `text/plain; charset=utf-8`).
_FIELD_TYPE: Final = re.compile(
    rf"{_MIME_CHARS}/{_MIME_CHARS}(?:; ?charset=({_MIME_CHARS}))?", re.I
)


@dataclass(frozen=True, slots=True)
class FormPart:
    """One part of a form: a field (no filename) or a file."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes

    def value(self) -> str | bytes:
        """A field's value as `request.post()` gives it: text when untyped or text/* (in its
        charset, UTF-8 by default), else bytes."""
        if self.content_type is None:
            return self.data.decode()
        if not self.content_type.startswith("text/"):
            return self.data
        match = _FIELD_TYPE.fullmatch(self.content_type)
        return self.data.decode(match[1] if match is not None and match[1] else "utf-8")


def split_form(body: bytes, boundary: str) -> list[FormPart] | None:
    """The parts of `body`, or None when it is not in the plain shape read here."""
    if not boundary or not boundary.isascii():
        return None
    # Positions in `body` rather than `bytes.split`, so a part's data is copied once (a 1 s
    # upload is 32 KiB: splitting and slicing the pieces copied it three more times).
    delimiter = b"\r\n--" + boundary.encode()
    if not body.startswith(delimiter[2:]):
        return None  # a preamble: aiohttp's reading
    parts = []
    start = len(delimiter) - 2
    # Every part is opened by a boundary line ending right there, and the last boundary is
    # followed by "--" and nothing else (or a final CRLF).
    while body[start : start + 5] not in (b"--", b"--\r\n"):  # short: the rest, never a copy
        end = body.find(delimiter, start)
        if end < 0:
            return None
        part = _part(body, start, end)
        if part is None:
            return None
        parts.append(part)
        start = end + len(delimiter)
    return parts or None


def _part(body: bytes, start: int, end: int) -> FormPart | None:
    """The part between a boundary ending at `start` and the next at `end`."""
    if not body.startswith(b"\r\n", start, end):
        return None  # padding after the boundary, or "--" before the last piece
    separator = body.find(b"\r\n\r\n", start + 2, end)
    if separator < 0:
        return None
    head, data = body[start + 2 : separator], body[separator + 4 : end]
    headers: dict[str, str] = {}
    for line in head.split(b"\r\n"):
        match = _HEADER_LINE.fullmatch(line)
        if match is None:
            return None
        name = match[1].lower().decode()
        try:
            value = match[2].decode().rstrip(" \t")
        except UnicodeDecodeError:
            return None
        if name in headers:
            return None
        headers[name] = value
    disposition = _DISPOSITION.fullmatch(headers.get("content-disposition", ""))
    content_type = headers.get("content-type")
    if disposition is None or disposition[1] == "_charset_":
        return None
    name, filename = disposition[1], disposition[2]
    if filename is not None and filename.startswith("/"):
        return None
    if content_type is not None and not filename and not _FIELD_TYPE.fullmatch(content_type):
        return None  # parameters other than a charset, or anything odd: aiohttp's reading
    return FormPart(name, filename, content_type, data)
