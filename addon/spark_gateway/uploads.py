"""Reading an audio upload (a form with a `file` field) for every audio route.

One place decides what a bad upload is: the wrong content type is a 415, a body over the
app's `client_max_size` a 413 (raised by aiohttp itself), and anything aiohttp cannot parse
as a form — no starting boundary, a body cut short, a part without a name, an unknown
charset — a 400 JSON error, never a 500.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDictProxy

from .appkeys import AUDIO_IN_FLIGHT, CONFIG, DECODER, SPOOL
from .audio_codec import AudioDecodeError
from .decoder import AudioBudgetExhausted, DecodedFile
from .errors import ApiError
from .spool import copy_to
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


@dataclass(frozen=True, slots=True)
class AudioUpload:
    """The uploaded file (spooled to disk), its size and the whole parsed form."""

    path: Path
    size: int
    form: FormData

    def text(self, name: str) -> str | None:
        """A text field, stripped; None when missing, empty or sent as a file."""
        value = self.form.get(name)
        if value is None or isinstance(value, web.FileField):
            return None
        text = (value.decode(errors="replace") if isinstance(value, bytes) else value).strip()
        return text or None

    def texts(self, name: str) -> list[str]:
        """Every value of a repeated text field (e.g. `timestamp_granularities[]`)."""
        return [
            value.decode(errors="replace") if isinstance(value, bytes) else value
            for value in self.form.getall(name, [])
            if not isinstance(value, web.FileField)
        ]


async def _read_form(request: web.Request) -> FormData:
    """The parsed form; a malformed body is a 400 (the upload cap stays aiohttp's 413)."""
    try:
        return await request.post()
    except _MALFORMED as err:
        detail = err.message if isinstance(err, HttpProcessingError) else str(err)
        message = f"malformed multipart body: {detail}"
        raise ApiError(400, message, code="invalid_multipart") from err


async def read_audio_upload(
    request: web.Request, *, content_types: tuple[str, ...] = (MULTIPART,)
) -> AudioUpload:
    """The `file` field spooled to disk (copied off the event loop) and the form."""
    if request.content_type not in content_types:
        raise ApiError(415, "send multipart/form-data with a 'file' field",
                       code="unsupported_media_type")  # fmt: skip
    form = await _read_form(request)
    upload = form.get("file")
    if upload is None:
        raise ApiError(400, "the 'file' field is required", code="missing_file", param="file")
    path = request.app[SPOOL].new_file(request, ".upload")
    if isinstance(upload, web.FileField):
        size = await asyncio.to_thread(copy_to, upload.file, path)
    else:
        size = await spool_bytes(path, upload.encode() if isinstance(upload, str) else upload)
    if size == 0:
        raise ApiError(400, "the audio file is empty", code="empty_audio", param="file")
    return AudioUpload(path, size, form)


async def spool_bytes(path: Path, data: bytes) -> int:
    """Write audio that arrived inline (a form value, base64 JSON) to its spool file."""
    await asyncio.to_thread(path.write_bytes, data)
    return len(data)


async def decode_upload(request: web.Request, upload: Path) -> DecodedFile:
    """Decode a spooled upload to 16 kHz mono WAV in a decoder process; 400 for bad audio.

    WAV headers are checked here first, so a format PyAV would crash on never reaches it; a WAV
    that already is 16 kHz mono PCM16 is used as uploaded (`stt_passthrough.py`).
    """
    config = request.app[CONFIG]
    try:
        await asyncio.to_thread(check_wav_header, upload)
        as_is = wav16k_as_is(upload, max_duration_s=config.max_audio_seconds)
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
    try:
        decoded = await request.app[DECODER].decode(
            upload,
            request.app[SPOOL].new_file(request, ".wav"),
            max_duration_s=config.max_audio_seconds,
        )
    except AudioDecodeError as err:
        in_flight.give(reserved)
        raise ApiError(400, str(err), code="invalid_audio", param="file") from err
    except BaseException:
        in_flight.give(reserved)
        raise
    # Keep what the decoded file holds until the request ends (its file goes then too).
    in_flight.give(reserved - decoded.duration_s)
    request.app[SPOOL].at_end(request, lambda: in_flight.give(decoded.duration_s))
    return decoded


def check_wav_header(upload: Path) -> None:
    """Raise WavHeaderError when the file is a WAV whose header no decoder should see."""
    with upload.open("rb") as file:
        head = file.read(HEADER_BYTES)
    if is_riff_wave(head):
        parse_wav_header(head)
