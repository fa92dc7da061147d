"""Reading an audio upload (a form with a `file` field) for every audio route.

One place decides what a bad upload is: the wrong content type is a 415, a body over the
app's `client_max_size` a 413, and anything aiohttp cannot parse
as a form — no starting boundary, a body cut short, a part without a name, an unknown
charset — a 400 JSON error, never a 500.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aiohttp import BodyPartReader, MultipartReader, StreamReader, hdrs, web
from aiohttp.helpers import parse_mimetype
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDict, MultiDictProxy

from .appkeys import AUDIO_IN_FLIGHT, CONFIG, DECODER, SPOOL
from .audio_codec import AudioDecodeError
from .decoder import AudioBudgetExhausted, DecodedFile
from .errors import ApiError
from .form_fields import check_field_count, check_field_size
from .parakeet_formats import ParakeetAudio
from .request_body import media_type
from .small_form import SMALL_BODY_BYTES, split_form
from .stt_passthrough import wav16k_as_is
from .wav_header import HEADER_BYTES, WavHeaderError, is_riff_wave, parse_wav_header

MULTIPART = "multipart/form-data"
URLENCODED = "application/x-www-form-urlencoded"

FormData = MultiDictProxy[str | bytes | web.FileField]

# What aiohttp's form parser raises on a malformed body: ValueError for framing faults
# ("Could not find starting boundary", "Reading after EOF", a part without a name, bad
# UTF-8), LookupError for a part declaring an unknown charset, HttpProcessingError for
# broken part headers.
_MALFORMED = (HttpProcessingError, ValueError, LookupError)
_CHUNK_BYTES: Final = 64 * 1024
_SIMPLE_PARAM: Final = re.compile(r'(name|filename)="([^"\\;=]*)"')
_SIMPLE_DISPOSITION: Final = re.compile(r'form-data(?:; ?(?:name|filename)="[^"\\;=]*")+')
_IN_MEMORY_BYTES: Final = 256 * 1024  # 8 s of 16 kHz mono PCM16


@dataclass(frozen=True, slots=True)
class AudioUpload:
    """The first uploaded file, its size, the other fields, every file.

    A file of up to 256 KiB (8 s of Parakeet's own WAV) stays in memory as bytes; a longer one
    is spooled to disk as it arrives.
    """

    audio: Path | bytes
    size: int
    form: FormData
    files: list[Path | bytes]  # every `file` part in order (the speaker library takes several)

    def text(self, name: str) -> str | None:
        """A text field, stripped; None when missing, empty or sent as a file."""
        value = self.form.get(name)
        if value is None or isinstance(value, web.FileField):
            return None
        text = (value.decode(errors="replace") if isinstance(value, bytes) else value).strip()
        return text or None

    def flag(self, name: str) -> bool:
        """A true/false field (any case; missing is false); anything else is a 400."""
        value = (self.text(name) or "false").lower()
        if value not in ("true", "false"):
            raise ApiError(400, f"{name} must be true or false", code="invalid_request",
                           param=name)  # fmt: skip
        return value == "true"

    def texts(self, name: str) -> list[str]:
        """Every value of a repeated text field (e.g. `timestamp_granularities[]`)."""
        return [
            value.decode(errors="replace") if isinstance(value, bytes) else value
            for value in self.form.getall(name, [])
            if not isinstance(value, web.FileField)
        ]


async def _read_form(request: web.Request) -> FormData:
    """The parsed urlencoded form; a malformed body is a 400, an oversized text field too."""
    try:
        form = await request.post()
    except _MALFORMED as err:
        raise _malformed(err) from err
    texts = [(name, value) for name, value in form.items() if name != "file"]
    check_field_count(len(texts))
    for name, value in texts:
        size = len(value) if isinstance(value, bytes) else len(str(value).encode())
        check_field_size(name, size)
    return form


def _malformed(err: Exception) -> ApiError:
    detail = err.message if isinstance(err, HttpProcessingError) else str(err)
    return ApiError(400, f"malformed multipart body: {detail}", code="invalid_multipart")


async def read_audio_upload(
    request: web.Request, *, content_types: tuple[str, ...] = (MULTIPART,)
) -> AudioUpload:
    """Every `file` part (in memory when short, else spooled to disk) and the other fields."""
    kind = media_type(request)
    if kind not in content_types:
        raise ApiError(415, "send multipart/form-data with a 'file' field",
                       code="unsupported_media_type")  # fmt: skip
    if request.content_length is not None:  # over the cap as declared: 413 before reading
        _Budget(request.app[CONFIG].max_upload_bytes).take(request.content_length)
    if kind == MULTIPART:
        try:
            files, form = await _read_multipart(request)
        except _MALFORMED as err:
            raise _malformed(err) from err
    else:
        form = await _read_form(request)
        files = []
        for value in form.getall("file", []):
            path = request.app[SPOOL].new_file(request, ".upload")
            data = value if isinstance(value, bytes) else str(value).encode()
            await spool_bytes(path, data)
            files.append(path)
    if not files:
        raise ApiError(400, "the 'file' field is required", code="missing_file", param="file")
    first = files[0]
    size = len(first) if isinstance(first, bytes) else first.stat().st_size
    if size == 0:
        raise ApiError(400, "the audio file is empty", code="empty_audio", param="file")
    return AudioUpload(files[0], size, form, files)


async def _read_multipart(request: web.Request) -> tuple[list[Path | bytes], FormData]:
    """A small body of known length read whole and split (`small_form.py`), else streamed."""
    length = request.content_length
    if length is None or length > SMALL_BODY_BYTES:
        return await _stream_multipart(request, await request.multipart())
    body = await request.read()  # within client_max_size, or a 413
    boundary = parse_mimetype(request.headers[hdrs.CONTENT_TYPE]).parameters.get("boundary")
    parts = split_form(body, boundary or "")
    if parts is None:  # not in the plain shape: aiohttp's reader, over the same bytes
        replayed = _replay(request, body)
        return await _stream_multipart(request, MultipartReader(request.headers, replayed))
    files: list[Path | bytes] = []
    fields: MultiDict[str | bytes | web.FileField] = MultiDict()
    for part in parts:
        if part.name == "file":
            files.append(part.data)
        elif not part.filename:  # a file under another name: nothing reads it
            check_field_count(len(fields) + 1)
            check_field_size(part.name, len(part.data))
            fields.add(part.name, part.value())
    return files, MultiDictProxy(fields)


def _replay(request: web.Request, body: bytes) -> StreamReader:
    """`body` as the stream aiohttp's multipart reader reads from."""
    # A limit above the body's size: the stream never asks the connection to pause reading.
    stream = StreamReader(request.protocol, limit=len(body) + 1, loop=asyncio.get_running_loop())
    stream.feed_data(body)
    stream.feed_eof()
    return stream


async def _stream_multipart(
    request: web.Request, reader: MultipartReader
) -> tuple[list[Path | bytes], FormData]:
    """Parse a multipart body part by part: `file` parts kept or spooled as they arrive.

    Unlike `request.post()` (each file part in a temporary file written through the executor,
    copied to the spool afterwards), a voice command's upload costs no thread round trip here;
    the body as a whole stays within the app's `client_max_size` (413 past it, as aiohttp's).
    """
    budget = _Budget(request.app[CONFIG].max_upload_bytes)
    files: list[Path | bytes] = []
    fields: MultiDict[str | bytes | web.FileField] = MultiDict()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise _malformed(ValueError("a nested multipart part"))
        name, filename = part_names(part)
        if name is None:
            raise _malformed(ValueError("a part without a name"))
        if name == "file":
            files.append(await _file_part(request, part, budget))
        elif filename:
            await _drain(part, budget)  # a file under another name: nothing reads it
        else:
            check_field_count(len(fields) + 1)
            fields.add(name, await _field_value(part, name, budget))
    return files, MultiDictProxy(fields)


def part_names(part: BodyPartReader) -> tuple[str | None, str | None]:
    """A part's name and filename, as `part.name` and `part.filename` give them.

    The usual `form-data; name="..."; filename="..."` is read with one regular expression;
    anything else (escapes, RFC 5987 names, odd spacing) goes to aiohttp's full parser, which
    rebuilds an escape table on every call and runs once for each of the two properties
    (about 0.1 ms a part).
    """
    header = part.headers.get(hdrs.CONTENT_DISPOSITION, "")
    if _SIMPLE_DISPOSITION.fullmatch(header):
        params = _SIMPLE_PARAM.findall(header)
        names = dict(params)
        if len(names) == len(params) and not any(v.startswith("/") for v in names.values()):
            return names.get("name"), names.get("filename")
    return part.name, part.filename


class _Budget:
    """Bytes of body parts read so far against the upload cap."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> None:
        self.used += size
        if 0 < self.limit < self.used:
            raise web.HTTPRequestEntityTooLarge(max_size=self.limit, actual_size=self.used)


async def _decoded(part: BodyPartReader, data: bytes) -> bytes:
    """`data` with the part's Content-Transfer-Encoding undone. `decode` is a coroutine on
    aiohttp 3.13 (HA 2026.2's pin) and a plain call again on 3.14 (newest HA)."""
    decoded = part.decode(data)
    return bytes(await decoded if inspect.isawaitable(decoded) else decoded)


async def _file_part(request: web.Request, part: BodyPartReader, budget: _Budget) -> Path | bytes:
    """A file part as bytes when it ends within 256 KiB; past that, a spool file written as
    the rest arrives (through a thread: a long upload's writes stay off the event loop)."""
    held = bytearray()
    while chunk := await part.read_chunk(_CHUNK_BYTES):
        chunk = await _decoded(part, chunk)
        budget.take(len(chunk))
        held += chunk
        if len(held) > _IN_MEMORY_BYTES:
            break
    else:
        return bytes(held)
    path = request.app[SPOOL].new_file(request, ".upload")
    with path.open("wb") as out:
        await asyncio.to_thread(out.write, held)
        del held
        while chunk := await part.read_chunk(_CHUNK_BYTES):
            chunk = await _decoded(part, chunk)
            budget.take(len(chunk))
            await asyncio.to_thread(out.write, chunk)
    return path


async def _drain(part: BodyPartReader, budget: _Budget) -> None:
    while chunk := await part.read_chunk(_CHUNK_BYTES):
        budget.take(len(chunk))


async def _field_value(part: BodyPartReader, name: str, budget: _Budget) -> str | bytes:
    """A form field as `request.post()` gives it: text when untyped or text/*, else bytes.

    Refused (400 naming it) once over its cap: decoded, and while still arriving at four
    times the cap, as no Content-Transfer-Encoding makes a value more than three times longer.
    """
    value = bytearray()
    while chunk := await part.read_chunk(_CHUNK_BYTES):
        budget.take(len(chunk))
        value += chunk
        check_field_size(name, len(value) // 4)
    data = await _decoded(part, bytes(value))
    check_field_size(name, len(data))
    content_type = part.headers.get(hdrs.CONTENT_TYPE)
    if content_type is None or content_type.startswith("text/"):
        return data.decode(part.get_charset(default="utf-8"))
    return data


async def spool_bytes(path: Path, data: bytes) -> int:
    """Write audio that arrived inline (a form value, base64 JSON) to its spool file."""
    await asyncio.to_thread(path.write_bytes, data)
    return len(data)


async def decode_upload(request: web.Request, upload: Path | bytes) -> DecodedFile:
    """Decode an upload to 16 kHz mono WAV in a decoder process; 400 for bad audio.

    WAV headers are checked here first, so a format PyAV would crash on never reaches it; a WAV
    that already is 16 kHz mono PCM16 is used as uploaded (`stt_passthrough.py`).
    """
    decoded = await _convert(request, upload, remux=False)
    assert isinstance(decoded, DecodedFile)  # only a remux job answers otherwise
    return decoded


async def parakeet_upload(request: web.Request, upload: Path | bytes) -> ParakeetAudio:
    """The upload as Parakeet is sent it (`parakeet_formats.py`): as uploaded, Opus remuxed
    into Ogg, or decoded to 16 kHz mono WAV; 400 for bad audio."""
    converted = await _convert(request, upload, remux=True)
    return converted.for_parakeet() if isinstance(converted, DecodedFile) else converted


async def _convert(
    request: web.Request, upload: Path | bytes, *, remux: bool
) -> DecodedFile | ParakeetAudio:
    config = request.app[CONFIG]
    try:
        head = read_checked_header(upload)
        as_is = wav16k_as_is(upload, head, max_duration_s=config.max_audio_seconds)
    except (WavHeaderError, AudioDecodeError) as err:
        raise ApiError(400, str(err), code="invalid_audio", param="file") from err
    in_flight = request.app[AUDIO_IN_FLIGHT]
    # Audio used as uploaded has a known length; a decode's is known only afterwards.
    reserved = as_is.duration_s if as_is is not None else config.max_audio_seconds
    try:
        await in_flight.take(reserved, wait_s=config.timeouts.decode)
    except AudioBudgetExhausted as err:
        raise ApiError(
            429,
            f"the gateway holds {in_flight.capacity_s / 3600:g} h of decoded audio already; "
            "retry shortly",
            code="too_many_requests",
            headers={"Retry-After": "5"},
        ) from err
    if as_is is not None:
        request.app[SPOOL].at_end(request, lambda: in_flight.give(reserved))
        return as_is
    decoder = request.app[DECODER]
    try:
        # A short upload goes to the decoder as bytes and comes back as bytes: no scratch file.
        convert = decoder.for_parakeet if remux else decoder.decode
        converted = await convert(
            upload,
            request.app[SPOOL].new_name(request, ".audio"),
            max_duration_s=config.max_audio_seconds,
        )
    except AudioDecodeError as err:
        in_flight.give(reserved)
        raise ApiError(400, str(err), code="invalid_audio", param="file") from err
    except BaseException:
        in_flight.give(reserved)
        raise
    # Keep what the converted file holds until the request ends (its file goes then too).
    held = converted.duration_s
    in_flight.give(reserved - held)
    request.app[SPOOL].at_end(request, lambda: in_flight.give(held))
    return converted


def read_checked_header(upload: Path | bytes) -> bytes:
    """The upload's first bytes; WavHeaderError when it is a WAV no decoder should see.

    A file's are read inline: at most 64 KiB from the page cache, which costs less than a
    thread round trip.
    """
    if isinstance(upload, bytes):
        head = upload[:HEADER_BYTES]
    else:
        with upload.open("rb") as file:
            head = file.read(HEADER_BYTES)
    if is_riff_wave(head):
        parse_wav_header(head)
    return head
