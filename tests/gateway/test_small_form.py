"""The quick in-memory form reading agrees with aiohttp's multipart reader, or stands aside.

Real clients' bodies (aiohttp's FormData as Open WebUI sends it, httpx's as the OpenAI SDK
does, a browser's FormData with a MediaRecorder blob) must take the quick path. Seeded
mutations of them (flipped, inserted and deleted bytes, cut bodies, doubled lines) must either
be left to aiohttp (None) or read exactly as aiohttp reads them: the quick path never disagrees.
"""

from __future__ import annotations

import asyncio
import random
import warnings
from collections.abc import Callable
from functools import partial

import aiohttp
import httpx
import pytest
from aiohttp import BodyPartReader, MultipartReader
from aiohttp.base_protocol import BaseProtocol
from aiohttp.helpers import parse_mimetype
from multidict import CIMultiDict, CIMultiDictProxy

from spark_gateway.small_form import FormPart, split_form

SEED = 7
AUDIO = bytes(range(256)) * 40 + b"\r\n--not-the-boundary\r\n" + b"RIFF" * 100


async def aiohttp_form() -> tuple[bytes, str]:
    form = aiohttp.FormData()
    form.add_field("file", AUDIO, filename="speech.webm", content_type="audio/webm")
    form.add_field("model", "whisper-1")
    form.add_field("language", "de")
    form.add_field("prompt", "Grüße, Zoë")
    writer = form()
    assert isinstance(writer, aiohttp.MultipartWriter)
    body = await _written(writer)
    return body, writer.content_type


async def _written(writer: aiohttp.MultipartWriter) -> bytes:
    class Sink:
        def __init__(self) -> None:
            self.data = bytearray()

        async def write(self, chunk: bytes) -> None:
            self.data += chunk

    sink = Sink()
    await writer.write(sink)  # type: ignore[arg-type]
    return bytes(sink.data)


async def httpx_form() -> tuple[bytes, str]:
    request = httpx.Request(
        "POST",
        "http://gateway/v1/audio/transcriptions",
        files={"file": ("speech.wav", AUDIO, "audio/wav")},
        data={
            "model": "whisper-1",
            "response_format": "verbose_json",
            "timestamp_granularities[]": ["word", "segment"],
        },
    )
    return request.read(), request.headers["Content-Type"]


async def browser_form() -> tuple[bytes, str]:
    boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="blob"\r\n'
            "Content-Type: audio/webm;codecs=opus\r\n\r\n"
        ).encode()
        + AUDIO
        + (
            f"\r\n--{boundary}\r\n"
            'Content-Disposition: form-data; name="model"\r\n\r\n'
            f"whisper-1\r\n--{boundary}--\r\n"
        ).encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


CLIENTS = {"aiohttp (Open WebUI)": aiohttp_form, "httpx (OpenAI SDK)": httpx_form,
           "browser FormData": browser_form}  # fmt: skip


def with_fixed_boundary(body: bytes, content_type: str) -> tuple[bytes, str]:
    """The same form under a boundary of the same length that does not change between runs.

    aiohttp and httpx draw a random boundary, which would move the seeded mutations to other
    places on every run: a disagreement found once could then not be found again.
    """
    drawn = boundary_of(content_type)
    fixed = ("spark" * 20)[: len(drawn)]
    return body.replace(drawn.encode(), fixed.encode()), content_type.replace(drawn, fixed)


Outcome = str | bytes | type[Exception]


def outcome(read: Callable[[], str | bytes]) -> Outcome:
    try:
        return read()
    except (UnicodeDecodeError, LookupError) as err:
        return type(err)


def field_value(data: bytes, content_type: str | None, charset: str) -> str | bytes:
    """`uploads._field_value`'s reading of a field's bytes."""
    if content_type is None or content_type.startswith("text/"):
        return data.decode(charset)
    return data


def text_values(parts: list[FormPart]) -> list[Outcome]:
    """The quick reading's field values (or the error reading one raises)."""
    return [outcome(part.value) for part in parts if not part.filename]


async def aiohttp_reading(
    body: bytes, content_type: str
) -> tuple[list[FormPart], list[Outcome]] | None:
    """What aiohttp's reader makes of `body`: its parts and its field values as the gateway's
    streaming path reads them (`uploads._field_value`); None when it refuses the body."""
    loop = asyncio.get_running_loop()
    stream = aiohttp.StreamReader(BaseProtocol(loop), limit=len(body) + 1, loop=loop)
    stream.feed_data(body)
    stream.feed_eof()
    headers = CIMultiDictProxy(CIMultiDict({"Content-Type": content_type}))
    parts, values = [], []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = MultipartReader(headers, stream)
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader) or part.name is None:
                    return None
                data = bytes(await part.read(decode=True))
                kind = part.headers.get("Content-Type")
                parts.append(FormPart(part.name, part.filename, kind, data))
                if not part.filename:
                    values.append(
                        outcome(partial(field_value, data, kind, part.get_charset("utf-8")))
                    )
    except (ValueError, LookupError, aiohttp.http_exceptions.HttpProcessingError):
        return None
    return parts, values


def boundary_of(content_type: str) -> str:
    return parse_mimetype(content_type).parameters["boundary"]


@pytest.mark.parametrize("client", CLIENTS)
async def test_real_clients_take_the_quick_path(client: str) -> None:
    body, content_type = await CLIENTS[client]()
    quick = split_form(body, boundary_of(content_type))
    assert quick is not None
    assert (quick, text_values(quick)) == await aiohttp_reading(body, content_type)
    files = [part for part in quick if part.name == "file"]
    assert [part.data for part in files] == [AUDIO]


def mutated(body: bytes, rng: random.Random) -> bytes:
    data = bytearray(body)
    for _ in range(rng.randrange(1, 4)):
        at = rng.randrange(len(data))
        kind = rng.randrange(5)
        if kind == 0:
            data[at] = rng.randrange(256)
        elif kind == 1:
            data[at:at] = rng.choice([b"\r\n", b"--", b'"', b"\\", b";", b" ", b"\r\n\r\n", b"/"])
        elif kind == 2:
            del data[at : at + rng.randrange(1, 8)]
        elif kind == 3:
            data = data[:at]
        else:
            end = data.find(b"\r\n", at)
            if end > 0:
                data[end:end] = data[data.rfind(b"\r\n", 0, at) : end]  # a line again
        if not data:
            data = bytearray(b"--")
    return bytes(data)


@pytest.mark.parametrize("client", CLIENTS)
async def test_mutated_bodies_are_read_as_aiohttp_reads_them_or_left_to_it(client: str) -> None:
    body, content_type = with_fixed_boundary(*await CLIENTS[client]())
    boundary = boundary_of(content_type)
    rng = random.Random(SEED)
    quick_reads = left = 0
    for _ in range(1500):
        candidate = mutated(body, rng)
        quick = split_form(candidate, boundary)
        if quick is None:
            left += 1
            continue
        quick_reads += 1
        expected = await aiohttp_reading(candidate, content_type)
        assert (quick, text_values(quick)) == expected, candidate[:300]
    assert quick_reads > 100  # mutations inside the audio or values are still read quickly
    assert left > 100  # and framing damage is left to aiohttp


def one_field(
    headers: bytes, value: bytes = b"1", *, before: bytes = b"", after: bytes = b""
) -> bytes:
    return before + b"--XB\r\n" + headers + b"\r\n\r\n" + value + b"\r\n--XB--" + after


NAMED_A = b'Content-Disposition: form-data; name="a"'
UNUSUAL = {
    "preamble": one_field(NAMED_A, before=b"hello\r\n"),
    "epilogue": one_field(NAMED_A, after=b"\r\nbye"),
    "a field type's parameter": one_field(NAMED_A + b"\r\nContent-Type: text/plain; format=x"),
    "_charset_": one_field(b'Content-Disposition: form-data; name="_charset_"', b"latin-1"),
    "transfer encoding": one_field(NAMED_A + b"\r\nContent-Transfer-Encoding: base64", b"MQ=="),
    "escaped name": one_field(b'Content-Disposition: form-data; name="a\\"b"'),
    "RFC 5987 filename": one_field(
        b"Content-Disposition: form-data; name=\"file\"; filename*=utf-8''%C3%A9.wav"
    ),
    "no closing boundary": b"--XB\r\n" + NAMED_A + b"\r\n\r\n1",
    "nested multipart": one_field(NAMED_A + b"\r\nContent-Type: multipart/mixed; boundary=YB"),
    # aiohttp 3.14 refuses a header value with a control character; 3.13 read it
    "control character in a header": one_field(b'Content-Disposition: form-data; name="a\x16"'),
}


@pytest.mark.parametrize("name", UNUSUAL)
def test_anything_unusual_is_left_to_aiohttp(name: str) -> None:
    assert split_form(UNUSUAL[name], "XB") is None
