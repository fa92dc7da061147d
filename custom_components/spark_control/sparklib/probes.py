"""Deep probes: make each GPU service do a small piece of real work.

`/health` only proves the HTTP server runs; a wedged CUDA context still answers it. So:
Parakeet transcribes a short speech clip, Magpie synthesizes a short phrase and vLLM completes
one token. Each probe has a hard timeout; see `sparklib.recovery` for how answers classify.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp

from .recovery import (
    ProbeResult,
    ServiceHealth,
    classify_health_response,
    classify_work_response,
    has_cuda_error,
)
from .service_keys import (
    MAGPIE as SERVICE_MAGPIE,
    PARAKEET as SERVICE_PARAKEET,
    VLLM as SERVICE_VLLM,
)

HEALTH_PATHS: Mapping[str, str] = {
    SERVICE_VLLM: "/health",
    SERVICE_PARAKEET: "/health",
    SERVICE_MAGPIE: "/v1/health/ready",
}
PROBE_PHRASE = "Health check."
# The real container's languages are "en-US" style; Parakeet takes ISO 639-1.
MAGPIE_LANGUAGE = "en-US"
BODY_SNIPPET = 300  # characters of an error body kept in the probe detail
MAX_PROBE_BODY = 8 * 1024 * 1024  # bytes read from any probe answer (a TTS WAV is ~50 KB)


class _ProbeFailed(Exception):
    """A probe step found the service unhealthy; carries the classification."""

    def __init__(self, health: ServiceHealth, detail: str) -> None:
        super().__init__(detail)
        self.health = health
        self.detail = detail


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= BODY_SNIPPET else text[:BODY_SNIPPET] + "…"


class DeepProber:
    """Deep probes of the services at `base_urls` (service key → `http://host:port`).

    Uses the injected aiohttp session (Home Assistant's shared one). `probe` never raises for a
    failing service: every failure becomes a classified `ProbeResult`.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_urls: Mapping[str, str],
        *,
        clip_wav: bytes,
        timeout: float = 30.0,
        health_timeout: float = 5.0,
        phrase: str = PROBE_PHRASE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Probe with `clip_wav` (16 kHz mono 16-bit WAV) and `timeout` seconds per probe."""
        if not clip_wav.startswith(b"RIFF"):
            raise ValueError("the probe clip must be a WAV file")
        self._session = session
        self._base_urls = {key: url.rstrip("/") for key, url in base_urls.items()}
        self._clip = clip_wav
        self.timeout = timeout
        self._health_timeout = health_timeout
        self._phrase = phrase
        self._clock = clock
        self._work: Mapping[str, Callable[[str], Awaitable[str]]] = {
            SERVICE_VLLM: self._complete_one_token,
            SERVICE_PARAKEET: self._transcribe_clip,
            SERVICE_MAGPIE: self._synthesize_phrase,
        }

    @property
    def services(self) -> tuple[str, ...]:
        """Services this prober can probe."""
        return tuple(key for key in self._base_urls if key in self._work)

    async def is_healthy(self, service: str) -> bool:
        """Whether the service's health endpoint answers 200 now (never raises)."""
        url = self._base_urls[service] + HEALTH_PATHS[service]
        try:
            async with asyncio.timeout(min(self._health_timeout, self.timeout)):
                async with self._session.get(url) as response:
                    await response.read()
                    return response.status == 200
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False

    async def probe(
        self,
        service: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109  (the cheap probe's own limit)
    ) -> ProbeResult:
        """Check health, then make the service do real work; classify what happened.

        `timeout` overrides the prober's own for this probe (vLLM's cheap periodic probe).
        """
        base_url = self._base_urls[service]
        work = self._work[service]
        limit = self.timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        started = loop.time()
        health = ServiceHealth.HEALTHY
        try:
            async with asyncio.timeout(limit):
                await self._check_health(service, base_url)
                detail = await work(base_url)
        except _ProbeFailed as failure:
            health, detail = failure.health, failure.detail
        except TimeoutError:
            health, detail = ServiceHealth.WEDGED, f"no answer within {limit:g} s"
        except aiohttp.ClientConnectorError as err:
            health, detail = ServiceHealth.DOWN, f"cannot connect: {err.os_error or err}"
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as err:
            # The server accepted the request and then died on it: broken, not stopped.
            health, detail = ServiceHealth.WEDGED, f"connection dropped mid-request: {err}"
        except (aiohttp.ClientError, OSError) as err:
            health, detail = ServiceHealth.DOWN, f"connection error: {err}"
        return ProbeResult(
            service=service,
            health=health,
            detail=detail,
            elapsed=loop.time() - started,
            checked_at=self._clock(),
        )

    async def _check_health(self, service: str, base_url: str) -> None:
        async with self._session.get(base_url + HEALTH_PATHS[service]) as response:
            body = await self._read_text(response)
            health = classify_health_response(response.status, body)
            if health is not ServiceHealth.HEALTHY:
                raise _ProbeFailed(
                    health, f"health check answered {response.status}: {_snippet(body)}"
                )

    async def _read_text(self, response: aiohttp.ClientResponse) -> str:
        raw = await response.content.read(MAX_PROBE_BODY)
        return raw.decode("utf-8", errors="replace")

    def _raise_if_failed(self, what: str, status: int, body: str) -> None:
        health = classify_work_response(status, body)
        if health is not ServiceHealth.HEALTHY:
            marker = " (CUDA error)" if has_cuda_error(body) else ""
            raise _ProbeFailed(health, f"{what} answered {status}{marker}: {_snippet(body)}")
        if status >= 400:
            # The service works but refused our request; say so without calling it wedged.
            detail = f"{what} refused the probe ({status}): {_snippet(body)}"
            raise _ProbeFailed(ServiceHealth.HEALTHY, detail)

    async def _transcribe_clip(self, base_url: str) -> str:
        form = aiohttp.FormData()
        form.add_field("file", self._clip, filename="probe.wav", content_type="audio/wav")
        form.add_field("response_format", "json")
        form.add_field("language", "en")
        async with self._session.post(base_url + "/v1/audio/transcriptions", data=form) as resp:
            body = await self._read_text(resp)
            self._raise_if_failed("transcription", resp.status, body)
        text = _json_field(body, "text")
        return f'transcribed the probe clip: "{_snippet(text)}"'

    async def _synthesize_phrase(self, base_url: str) -> str:
        # The NIM reads multipart only; a form of plain fields would go out urlencoded.
        form = aiohttp.FormData(default_to_multipart=True)
        form.add_field("text", self._phrase)
        form.add_field("language", MAGPIE_LANGUAGE)
        form.add_field("sample_rate_hz", "16000")
        form.add_field("encoding", "LINEAR_PCM")
        async with self._session.post(base_url + "/v1/audio/synthesize", data=form) as resp:
            if resp.status >= 400:
                body = await self._read_text(resp)
                self._raise_if_failed("synthesis", resp.status, body)
            audio = await resp.content.read(MAX_PROBE_BODY)
        if len(audio) <= 44:
            raise _ProbeFailed(ServiceHealth.WEDGED, "synthesis returned no audio")
        return f"synthesized {len(audio)} bytes of audio"

    async def _complete_one_token(self, base_url: str) -> str:
        async with self._session.get(base_url + "/v1/models") as resp:
            body = await self._read_text(resp)
            self._raise_if_failed("model list", resp.status, body)
        model = _first_model_id(body)
        if model is None:
            raise _ProbeFailed(ServiceHealth.DOWN, "no model loaded")
        payload = {"model": model, "prompt": "Hi", "max_tokens": 1, "temperature": 0}
        async with self._session.post(base_url + "/v1/completions", json=payload) as resp:
            body = await self._read_text(resp)
            self._raise_if_failed("completion", resp.status, body)
        return f"{model} completed one token"


def _json_field(body: str, key: str) -> str:
    try:
        data: Any = json.loads(body)
    except ValueError:
        return body
    return str(data.get(key, "")) if isinstance(data, dict) else body


def _first_model_id(body: str) -> str | None:
    try:
        data: Any = json.loads(body)
    except ValueError:
        return None
    models = data.get("data") if isinstance(data, dict) else None
    if isinstance(models, list) and models and isinstance(models[0], dict):
        model_id = models[0].get("id")
        return model_id if isinstance(model_id, str) else None
    return None
