"""Read a form request (multipart or URL-encoded) into fields and files, with a size cap."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import BodyPartReader, web


class FormError(ValueError):
    """The body is not a usable form; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Form:
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)

    def first(self, name: str, default: str | None = None) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else default

    def values(self, *names: str) -> list[str]:
        return [value for name in names for value in self.fields.get(name, [])]


async def read_form(
    request: web.Request, max_bytes: int, file_fields: tuple[str, ...] = ("file",)
) -> Form:
    form = Form()
    if request.content_type == "application/x-www-form-urlencoded":
        # Form(...) fields on a FastAPI server accept URL-encoded bodies too (no files, though).
        if (request.content_length or 0) > max_bytes:
            raise FormError(f"Upload exceeds the {max_bytes} byte limit.", status=413)
        for name, value in (await request.post()).items():
            if isinstance(value, str):
                form.fields.setdefault(name, []).append(value)
        return form
    if not request.content_type.startswith("multipart/"):
        raise FormError("Expected a multipart/form-data or URL-encoded form body.")
    total = 0
    try:
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue
            name = part.name or ""
            chunks: list[bytes] = []
            while chunk := await part.read_chunk(65536):
                total += len(chunk)
                if total > max_bytes:
                    raise FormError(f"Upload exceeds the {max_bytes} byte limit.", status=413)
                chunks.append(chunk)
            payload = b"".join(chunks)
            if name in file_fields or part.filename is not None:
                form.files[name] = payload
            else:
                form.fields.setdefault(name, []).append(payload.decode("utf-8", errors="replace"))
    except (ValueError, AssertionError) as err:
        if isinstance(err, FormError):
            raise
        raise FormError(f"Malformed multipart body: {err}") from err
    return form
