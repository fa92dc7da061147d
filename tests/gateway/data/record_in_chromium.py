"""Record `chromium_speech.webm`: flite's voice played into Chromium's fake microphone and
recorded by the browser's own MediaRecorder (audio/webm;codecs=opus), as Open WebUI records.

    .venv/bin/python tests/gateway/data/record_in_chromium.py

Drives Debian's chromium over the DevTools protocol (no Playwright needed); the recording is
kept in the repository so the gateway tests carry a real browser's file without a browser.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

HERE = Path(__file__).resolve().parent
SPOKEN = "The quick brown fox jumps over the lazy dog."  # tests/gateway/conftest.py's
RECORD_MS = 3200  # flite says it in 2.9 s; the fake microphone loops the file after that

RECORDER = """
(async () => {
  const stream = await navigator.mediaDevices.getUserMedia({audio: true});
  const recorder = new MediaRecorder(stream, {mimeType: "audio/webm;codecs=opus"});
  const parts = [];
  recorder.ondataavailable = (event) => parts.push(event.data);
  const stopped = new Promise((resolve) => (recorder.onstop = resolve));
  recorder.start();
  await new Promise((resolve) => setTimeout(resolve, %d));
  recorder.stop();
  await stopped;
  const bytes = new Uint8Array(await new Blob(parts).arrayBuffer());
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
})()
"""


async def record(chromium: str, speech: Path) -> bytes:
    # getUserMedia needs a secure context: a page from 127.0.0.1, not about:blank.
    async def blank(request: web.Request) -> web.Response:
        return web.Response(text="<title>recorder</title>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/", blank)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        return await _record(chromium, speech, f"http://127.0.0.1:{port}/")
    finally:
        await runner.cleanup()


async def _record(chromium: str, speech: Path, page_url: str) -> bytes:
    with tempfile.TemporaryDirectory() as profile:
        browser = subprocess.Popen(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={speech}",
                "--autoplay-policy=no-user-gesture-required",
                "about:blank",
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert browser.stderr is not None
            for line in browser.stderr:
                if line.startswith("DevTools listening on "):
                    endpoint = line.split()[-1]
                    break
            port = endpoint.split(":")[2].split("/")[0]
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/json/list") as resp:
                    page = next(t for t in await resp.json() if t["type"] == "page")
                async with session.ws_connect(page["webSocketDebuggerUrl"]) as ws:
                    await _call(ws, 1, "Page.enable", {})
                    await ws.send_json(
                        {"id": 2, "method": "Page.navigate", "params": {"url": page_url}}
                    )
                    async for message in ws:
                        if json.loads(message.data).get("method") == "Page.loadEventFired":
                            break
                    expression = RECORDER % RECORD_MS
                    params = {"expression": expression, "awaitPromise": True, "returnByValue": True}
                    result = await _call(ws, 3, "Runtime.evaluate", params)
                    assert "exceptionDetails" not in result, result
                    return base64.b64decode(result["result"]["value"])
            raise RuntimeError("no answer from the browser")
        finally:
            browser.kill()
            browser.wait()


async def _call(
    ws: aiohttp.ClientWebSocketResponse, call_id: int, method: str, params: dict[str, Any]
) -> dict[str, Any]:
    """One DevTools call and its result (events arriving meanwhile are skipped)."""
    await ws.send_json({"id": call_id, "method": method, "params": params})
    async for message in ws:
        reply = json.loads(message.data)
        if reply.get("id") == call_id:
            result: dict[str, Any] = reply["result"]
            return result
    raise RuntimeError(f"the browser closed the connection during {method}")


def main() -> None:
    chromium = shutil.which("chromium")
    assert chromium, "apt-get install chromium"
    with tempfile.TemporaryDirectory() as work:
        speech = Path(work) / "speech.wav"
        subprocess.run(["flite", "-voice", "slt", "-t", SPOKEN, "-o", str(speech)], check=True)
        webm = asyncio.run(record(chromium, speech))
    (HERE / "chromium_speech.webm").write_bytes(webm)
    print(f"{len(webm)} bytes")


if __name__ == "__main__":
    main()
