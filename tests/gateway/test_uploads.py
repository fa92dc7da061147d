"""Malformed multipart bodies get a 400 JSON error on every audio upload route, never a 500;
so does a text field over its own cap, naming the field.

All three routes read uploads through `spark_gateway.uploads`; the bodies below are the ways
aiohttp's multipart parser fails (framing, part headers, a nameless part, an unknown charset).
Also here: the quick part-name reading agrees with aiohttp's, and scratch files do not outlive
their request.
"""

from __future__ import annotations

import asyncio
import base64
import warnings
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import BodyPartReader
from multidict import CIMultiDict, CIMultiDictProxy
from openai import AsyncOpenAI, BadRequestError

from spark_gateway.appkeys import AUDIO_IN_FLIGHT, SPOOL
from spark_gateway.form_fields import DEFAULT_FIELD_BYTES, MAX_TEXT_FIELDS, PROMPT_BYTES
from spark_gateway.spool import Spool
from spark_gateway.uploads import part_names
from tests.gateway.conftest import GatewayFactory, RunningGateway
from tests.gateway.hostile_audio import wav_file

ROUTES = (
    "/v1/audio/transcriptions",
    "/api/audio/transcribe-with-speakers",
    "/api/audio/diarize-chunk",
)
FILE_PART = b'Content-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
MALFORMED = {
    "not multipart at all": b"this is not multipart at all",
    "empty body": b"",
    "another boundary": b"--OTHER\r\n" + FILE_PART + b"RIFF\r\n--OTHER--\r\n",
    "cut off before the closing boundary": b"--XB\r\n" + FILE_PART + b"RIFF....",
    "broken part header": b"--XB\r\nthis is no header line\r\n\r\nRIFF\r\n--XB--\r\n",
    "part without a name": b"--XB\r\nContent-Type: audio/wav\r\n\r\nRIFF\r\n--XB--\r\n",
    "unknown charset": (
        b"--XB\r\n" + FILE_PART + b"RIFF\r\n--XB\r\n"
        b'Content-Disposition: form-data; name="language"\r\n'
        b"Content-Type: text/plain; charset=no-such-charset\r\n\r\nen\r\n--XB--\r\n"
    ),
}


@pytest.mark.parametrize("route", ROUTES)
async def test_malformed_multipart_is_400(start_gateway: GatewayFactory, route: str) -> None:
    gateway = await start_gateway()
    headers = {**gateway.headers(), "Content-Type": "multipart/form-data; boundary=XB"}
    async with aiohttp.ClientSession() as session:
        for name, body in MALFORMED.items():
            async with session.post(gateway.url + route, data=body, headers=headers) as resp:
                assert resp.status == 400, (name, await resp.text())
                assert resp.content_type == "application/json", name
                error = (await resp.json())["error"]
                assert error["code"] == "invalid_multipart", (name, error)
                assert error["message"].startswith("malformed multipart body: "), name


@pytest.mark.parametrize("route", ROUTES)
async def test_multipart_without_boundary_is_400(start_gateway: GatewayFactory, route: str) -> None:
    gateway = await start_gateway()
    headers = {**gateway.headers(), "Content-Type": "multipart/form-data"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(gateway.url + route, data=b"--XB\r\n", headers=headers) as resp,
    ):
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "invalid_multipart"


DISPOSITIONS = [
    'form-data; name="file"; filename="speech.wav"',
    'form-data; name="model"',
    'form-data;name="file";filename="a.webm"',
    'form-data; name="file"; filename=""',
    'form-data; name=""',
    'form-data; name="file"; filename="/etc/passwd"',
    'form-data; name="file"; filename="a\\"b.wav"',
    'form-data; name="file"; filename="a;b.wav"',
    "form-data; name=\"file\"; filename*=utf-8''%C3%A9.wav",
    'form-data; name="file"; name="other"',
    "form-data; name=file; filename=a.wav",
    'FORM-DATA; NAME="file"',
    "attachment",
    "",
]


@pytest.mark.parametrize("header", DISPOSITIONS)
def test_part_names_agree_with_aiohttp(header: str) -> None:
    """The quick Content-Disposition reading gives what aiohttp's own parser gives."""
    headers = CIMultiDictProxy(CIMultiDict({"Content-Disposition": header} if header else {}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # aiohttp warns about the malformed ones
        expected = (
            BodyPartReader(b"--XB", headers, None).name,  # type: ignore[arg-type]
            BodyPartReader(b"--XB", headers, None).filename,  # type: ignore[arg-type]
        )
        assert part_names(BodyPartReader(b"--XB", headers, None)) == expected  # type: ignore[arg-type]


async def test_scratch_files_go_when_answered(gateway: RunningGateway, short_wav: bytes) -> None:
    """Uploads (as is, decoded, refused) leave no file behind and give back the audio budget."""
    spool, budget = gateway.app[SPOOL], gateway.app[AUDIO_IN_FLIGHT]
    stereo = wav_file(channels=2, data=b"\x01\x00" * 32000)
    for audio, expected in ((short_wav, 200), (stereo, 200), (b"not audio at all", 400)):
        form = aiohttp.FormData()
        form.add_field("file", audio, filename="upload.wav")
        form.add_field("model", "whisper-1")
        status, body = await gateway.post("/v1/audio/transcriptions", data=form)
        assert status == expected, body
    await spool.drain()
    assert list(spool.directory.iterdir()) == []
    assert budget.free_s == budget.capacity_s


async def test_form_fields_and_extra_files(start_gateway: GatewayFactory, short_wav: bytes) -> None:
    """Fields around the file are read whatever their order; a file under another name is
    skipped; a body over the upload cap is a 413 even when it arrives as one part."""
    gateway = await start_gateway(max_upload_bytes=len(short_wav) + 4096)
    form = aiohttp.FormData()
    form.add_field("response_format", "nonsense")
    form.add_field("extra", b"x" * 1000, filename="extra.bin")
    form.add_field("file", short_wav, filename="speech.wav")
    status, body = await gateway.post("/v1/audio/transcriptions", data=form)
    # The field before the file was read: its value is what the route refuses.
    assert status == 400, body
    assert body["error"]["param"] == "response_format"
    big = aiohttp.FormData()
    big.add_field("file", short_wav + b"\x00" * 8192, filename="speech.wav")
    status, body = await gateway.post("/v1/audio/transcriptions", data=big)
    assert status == 413, body
    assert body["error"]["code"] == "request_too_large"


async def test_drain_returns_when_removals_just_finished(tmp_path: Path) -> None:
    """A removal already finished, its done callback not yet run: drain still returns."""
    spool = Spool(tmp_path)
    scratch = tmp_path / "scratch.upload"
    scratch.write_bytes(b"RIFF")
    returned: list[str] = []
    spool._remove_soon([scratch], [lambda: returned.append("budget")])
    while not all(task.done() for task in spool._removals):
        # One loop step at a time, no timer: awaiting the task instead would let its done
        # callbacks run first, and the case under test is the moment before they do.
        await asyncio.sleep(0)
    await asyncio.wait_for(spool.drain(), 30)
    assert returned == ["budget"]
    assert not scratch.exists()


@pytest.mark.parametrize("route", ROUTES)
async def test_long_text_field_is_400_naming_it(gateway: RunningGateway, route: str) -> None:
    """A text field over its own cap is refused by name, long before the upload cap."""
    form = aiohttp.FormData()
    form.add_field("language", "en" * (DEFAULT_FIELD_BYTES // 2 + 1))  # sent before the file
    form.add_field("file", wav_file(data=b"\x00\x00" * 16000), filename="a.wav")
    status, body = await gateway.post(route, data=form)
    assert status == 400, body
    assert body["error"]["code"] == "string_above_max_length"
    assert body["error"]["param"] == "language"
    assert str(DEFAULT_FIELD_BYTES) in body["error"]["message"]


async def test_prompt_cap_through_the_sdk(client: AsyncOpenAI, short_wav: bytes) -> None:
    """A prompt of 4 KiB is accepted; one byte more is OpenAI's `string_above_max_length`."""
    accepted = await client.audio.transcriptions.create(
        file=("speech.wav", short_wav), model="whisper-1", prompt="p" * PROMPT_BYTES
    )
    assert accepted.text
    with pytest.raises(BadRequestError) as refused:
        await client.audio.transcriptions.create(
            file=("speech.wav", short_wav), model="whisper-1", prompt="p" * (PROMPT_BYTES + 1)
        )
    assert refused.value.code == "string_above_max_length"
    assert refused.value.param == "prompt"


async def test_field_cap_counts_bytes_not_characters(gateway: RunningGateway) -> None:
    """The cap is on UTF-8 bytes: 200 four-byte characters are 800 bytes, over the cap."""
    form = aiohttp.FormData()
    form.add_field("file", wav_file(data=b"\x00\x00" * 16000), filename="a.wav")
    form.add_field("model", "\U0001f600" * 200)
    status, body = await gateway.post("/v1/audio/transcriptions", data=form)
    assert status == 400, body
    assert body["error"]["param"] == "model"


async def test_urlencoded_text_fields_are_capped(gateway: RunningGateway) -> None:
    """The urlencoded form (file inline) has the same field caps as multipart."""
    status, body = await gateway.post(
        "/v1/audio/transcriptions",
        data={"file": "RIFF", "response_format": "j" * (DEFAULT_FIELD_BYTES + 1)},
    )
    assert status == 400, body
    assert body["error"]["code"] == "string_above_max_length"
    assert body["error"]["param"] == "response_format"


async def test_json_audio_fields_are_capped(gateway: RunningGateway, short_wav: bytes) -> None:
    """Open WebUI's JSON form (base64 `input_audio`) has the same caps on its text fields."""
    payload = {
        "model": "whisper-1",
        "language": "e" * (DEFAULT_FIELD_BYTES + 1),
        "input_audio": {"data": base64.b64encode(short_wav).decode(), "format": "wav"},
    }
    status, body = await gateway.post("/v1/audio/transcriptions", json=payload)
    assert status == 400, body
    assert body["error"]["code"] == "string_above_max_length"
    assert body["error"]["param"] == "language"


@pytest.mark.parametrize("urlencoded", [False, True], ids=["multipart", "urlencoded"])
async def test_too_many_text_fields_is_400(gateway: RunningGateway, urlencoded: bool) -> None:
    """Thousands of small fields are refused at the count cap, not held."""
    fields = [(f"f{index}", "x") for index in range(MAX_TEXT_FIELDS + 1)]
    if urlencoded:
        data: Any = [("file", "RIFF"), *fields]
    else:
        data = aiohttp.FormData(fields)
        data.add_field("file", b"RIFF", filename="a.wav")
    status, body = await gateway.post("/v1/audio/transcriptions", data=data)
    assert status == 400, body
    assert body["error"]["code"] == "too_many_fields"
