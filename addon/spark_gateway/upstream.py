"""Typed calls to the GPU services (vLLM, Parakeet, Magpie) over one shared aiohttp session.

Every call has a timeout. Failures become `UpstreamError`s with the status the client should
see: 503 when a service is not configured or refuses connections, 504 on timeouts, 502 on a bad
answer. A Parakeet 500 means a wedged CUDA context: it raises `UpstreamWedged` (503 with
Retry-After) at once and reports the wedge to Home Assistant in the background.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import aiohttp
from multidict import CIMultiDict

from .config import GatewayConfig
from .errors import ApiError, UpstreamError, UpstreamWedged
from .ha_events import HaNotifier
from .metrics import GatewayMetrics
from .parakeet_formats import WAV_16K, UploadFormat
from .wav_form import InlineForm, wav_form

_LOGGER = logging.getLogger(__name__)

VLLM: Final = "vllm"
PARAKEET: Final = "parakeet"
MAGPIE: Final = "magpie"

# Request headers worth passing to vLLM; everything else (auth, cookies, encodings) stays here.
_RELAYED_REQUEST_HEADERS: Final = ("Content-Type", "Accept")
_CLIENT_STATUSES: Final = frozenset({400, 404, 413, 422})


class UpstreamRejected(UpstreamError):
    """An upstream refused a request as invalid (4xx) although the gateway validated it."""


class UpstreamClient:
    """The gateway's only way to reach the GPU services."""

    def __init__(
        self,
        config: GatewayConfig,
        session: aiohttp.ClientSession,
        notifier: HaNotifier,
        metrics: GatewayMetrics,
    ) -> None:
        self.config = config
        self.session = session
        self.notifier = notifier
        self.metrics = metrics
        timeouts = config.timeouts
        self._t_transcribe = aiohttp.ClientTimeout(
            total=timeouts.transcription, sock_connect=timeouts.connect
        )
        self._t_diarize = aiohttp.ClientTimeout(
            total=timeouts.diarization, sock_connect=timeouts.connect
        )
        self._t_speech = aiohttp.ClientTimeout(total=timeouts.speech, sock_connect=timeouts.connect)
        self._t_health = aiohttp.ClientTimeout(total=timeouts.health, sock_connect=timeouts.connect)
        self._t_chat = aiohttp.ClientTimeout(total=timeouts.chat, sock_connect=timeouts.connect)
        self._t_stream = aiohttp.ClientTimeout(
            total=None, sock_connect=timeouts.connect, sock_read=timeouts.stream_idle
        )

    # -- plumbing -------------------------------------------------------------------------

    def base_url(self, service: str) -> str:
        """The configured URL of `service`, or a 503 telling the operator it is not set up."""
        url = {
            VLLM: self.config.vllm_url,
            PARAKEET: self.config.parakeet_url,
            MAGPIE: self.config.magpie_url,
        }[service]
        if not url:
            raise UpstreamError(
                service,
                503,
                f"{service} is not configured on this gateway",
                code="upstream_not_configured",
            )
        return url

    def _failure(self, service: str, err: BaseException) -> UpstreamError:
        """Map a transport failure to the status the client should see."""
        if isinstance(err, TimeoutError):
            kind, status, message = "timeout", 504, f"{service} did not answer in time"
        elif isinstance(err, aiohttp.ClientConnectorError):
            kind, status, message = "unavailable", 503, f"{service} is unreachable"
        elif isinstance(err, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            # Closed or reset without answering, e.g. vLLM stopped for a swap mid-request.
            kind, status, message = "disconnected", 502, f"{service} closed the connection"
        else:
            kind, status, message = "bad_response", 502, f"{service} connection failed: {err}"
        self.metrics.upstream_errors.labels(service, kind).inc()
        return UpstreamError(service, status, message, code=f"upstream_{kind}")

    async def _error_from_response(self, service: str, resp: aiohttp.ClientResponse) -> ApiError:
        """An upstream non-2xx answer as the error the client gets."""
        body = (await resp.read())[:2000].decode("utf-8", "replace")
        detail = _error_message(body) or f"HTTP {resp.status}"
        if resp.status >= 500 and (service == PARAKEET or (service == VLLM and resp.status != 503)):
            # A 5xx from Parakeet, or from vLLM outside a load (its engine died behind a
            # healthy API server): 503 + Retry-After to the client, a wedge report to HA.
            return await self._wedged(service, f"HTTP {resp.status}: {detail}")
        self.metrics.upstream_errors.labels(service, f"http_{resp.status}").inc()
        if service == VLLM and resp.status == 503:
            # vLLM answers 503 while it loads a model (a swap): the relay holds for this.
            return UpstreamError(service, 503, "vllm is loading a model", code="upstream_loading")
        if service == MAGPIE and resp.status < 500:
            # Voice and text were validated here, so a refusal is the gateway's problem.
            return UpstreamRejected(
                service, 502, f"magpie refused the request: {detail}", code="upstream_rejected"
            )
        if resp.status in _CLIENT_STATUSES:
            return ApiError(resp.status, f"{service}: {detail}", code="upstream_rejected")
        return UpstreamError(
            service, 502, f"{service} failed: HTTP {resp.status}: {detail}", code="upstream_error"
        )

    async def vllm_error(self, resp: aiohttp.ClientResponse) -> ApiError:
        """What the client gets for a vLLM answer the relay does not pass on (a wedge)."""
        return await self._error_from_response(VLLM, resp)

    async def _wedged(self, service: str, error: str) -> UpstreamWedged:
        """Report a wedge to Home Assistant (rate-limited) and build the client's 503."""
        self.metrics.upstream_errors.labels(service, "wedged").inc()
        if await self.notifier.report_wedge(service, error, self.base_url(service)):
            self.metrics.wedge_reports.labels(service).inc()
            _LOGGER.warning("%s failed (%s); reported a wedge to Home Assistant", service, error)
        return UpstreamWedged(service, error)

    async def _post_form(
        self,
        service: str,
        path: str,
        form: aiohttp.FormData | InlineForm,
        limits: aiohttp.ClientTimeout,
    ) -> tuple[bytes, str]:
        url = self.base_url(service) + path
        data, headers = (
            (form.body, {"Content-Type": form.content_type})
            if isinstance(form, InlineForm)
            else (form, None)
        )
        try:
            async with self.session.post(url, data=data, headers=headers, timeout=limits) as resp:
                if resp.status >= 300:
                    raise await self._error_from_response(service, resp)
                return await resp.read(), resp.headers.get("Content-Type", "")
        except ApiError:
            raise
        except TimeoutError as err:
            if service == PARAKEET:
                # A hung CUDA call looks exactly like this: same report as a 500.
                timeout = f"no answer within {limits.total:.0f} s"
                raise await self._wedged(service, timeout) from err
            raise self._failure(service, err) from err
        except aiohttp.ClientError as err:
            raise self._failure(service, err) from err

    async def _get_json(self, service: str, path: str) -> Any:
        url = self.base_url(service) + path
        try:
            async with self.session.get(url, timeout=self._t_health) as resp:
                if resp.status >= 300:
                    raise await self._error_from_response(service, resp)
                return await resp.json(content_type=None)
        except ApiError:
            raise
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            raise self._failure(service, err) from err

    # -- Parakeet ---------------------------------------------------------------------------

    async def transcribe(
        self,
        wav: bytes | Path,
        *,
        language: str | None = None,
        response_format: str = "json",
        granularities: Iterable[str] = (),
        model: str | None = None,
        audio_format: UploadFormat = WAV_16K,
    ) -> Any:
        """Parakeet transcription of 16 kHz mono WAV (or Ogg/Opus, as `audio_format` says);
        JSON formats parsed, `text` as str."""
        fields = [("model", model or self.config.stt_model)]
        if response_format != "json":
            # json is the API's default: one part less for Parakeet to parse (0.1-0.2 ms a
            # part with aiohttp's form reader, benchmarks/gateway_stt_overhead.py).
            fields.append(("response_format", response_format))
        if language:
            fields.append(("language", language))
        fields += [("timestamp_granularities[]", granularity) for granularity in granularities]
        form = wav_form(wav, fields, audio_format)
        body, ctype = await self._post_form(
            PARAKEET, "/v1/audio/transcriptions", form, self._t_transcribe
        )
        if response_format == "text" and "json" not in ctype:
            return body.decode("utf-8", "replace")
        return _parse_json(PARAKEET, body)

    async def diarize_chunk(self, wav: bytes | Path) -> dict[str, Any]:
        """Parakeet container's `/v1/audio/diarize-chunk`: segments + per-speaker fingerprints."""
        return await self._post_wav_json("/v1/audio/diarize-chunk", wav)

    async def diarize(self, wav: bytes | Path) -> dict[str, Any]:
        """Parakeet container's `/v1/audio/diarize`: segments for a whole recording."""
        return await self._post_wav_json("/v1/audio/diarize", wav)

    async def _post_wav_json(self, path: str, wav: bytes | Path) -> dict[str, Any]:
        body, _ = await self._post_form(PARAKEET, path, wav_form(wav, ()), self._t_diarize)
        result = _parse_json(PARAKEET, body)
        if not isinstance(result, dict):
            raise UpstreamError(
                PARAKEET, 502, "parakeet returned an unexpected body", code="upstream_bad_response"
            )
        return result

    # -- Magpie -----------------------------------------------------------------------------

    async def synthesize(self, text: str, *, voice: str, language: str, sample_rate: int) -> bytes:
        """Magpie `/v1/audio/synthesize`: one request (≤ magpie_max_chars) → WAV bytes."""
        form = aiohttp.FormData(default_to_multipart=True)
        form.add_field("text", text)
        form.add_field("language", language)
        form.add_field("voice", voice)
        form.add_field("sample_rate_hz", str(sample_rate))
        form.add_field("encoding", "LINEAR_PCM")
        body, _ = await self._post_form(MAGPIE, "/v1/audio/synthesize", form, self._t_speech)
        return body

    async def list_voices(self) -> dict[str, list[str]]:
        """Magpie voices by locale, from NIM's one-key-of-joined-locales shape."""
        raw = await self._get_json(MAGPIE, "/v1/audio/list_voices")
        voices: dict[str, list[str]] = {}
        if isinstance(raw, dict):
            for locales, entry in raw.items():
                names = entry.get("voices", []) if isinstance(entry, dict) else []
                for locale in str(locales).split(","):
                    voices.setdefault(locale.strip(), []).extend(str(n) for n in names)
        return voices

    # -- vLLM -------------------------------------------------------------------------------

    async def vllm_models(self) -> list[dict[str, Any]]:
        """vLLM's model cards (`/v1/models` data)."""
        raw = await self._get_json(VLLM, "/v1/models")
        data = raw.get("data") if isinstance(raw, dict) else None
        return [card for card in data or [] if isinstance(card, dict)]

    async def open_vllm(
        self, path: str, body: bytes, headers: Mapping[str, str], *, stream: bool
    ) -> aiohttp.ClientResponse:
        """Start a vLLM request and return the open response; the caller must release it.

        Non-2xx answers are returned too: the relay passes their status and body on unchanged.
        """
        url = self.base_url(VLLM) + path
        forwarded = CIMultiDict(
            (name, headers[name]) for name in _RELAYED_REQUEST_HEADERS if name in headers
        )
        try:
            resp = await self.session.post(
                url,
                data=body,
                headers=forwarded,
                timeout=self._t_stream if stream else self._t_chat,
            )
        except (aiohttp.ClientError, TimeoutError) as err:
            raise self._failure(VLLM, err) from err
        if resp.status >= 500:
            self.metrics.upstream_errors.labels(VLLM, f"http_{resp.status}").inc()
        return resp

    def relay_failure(self, err: BaseException) -> UpstreamError:
        """Map a failure while reading a relayed vLLM body."""
        return self._failure(VLLM, err)

    # -- health -----------------------------------------------------------------------------

    async def probe(self, service: str) -> bool:
        """Whether `service` answers its health endpoint with 2xx (never raises)."""
        path = {VLLM: "/health", PARAKEET: "/health", MAGPIE: "/v1/health/ready"}[service]
        try:
            url = self.base_url(service) + path
            async with self.session.get(url, timeout=self._t_health) as resp:
                return resp.status < 300
        except (ApiError, aiohttp.ClientError, TimeoutError):
            return False


def _parse_json(service: str, body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as err:
        raise UpstreamError(
            service, 502, f"{service} returned invalid JSON", code="upstream_bad_response"
        ) from err


def _error_message(body: str) -> str:
    """The message inside an upstream JSON error, or the start of its body."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return body.strip()[:300]
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data.get("message")))
        if isinstance(error, dict):
            return str(error.get("message", error))[:300]
        if error is not None:
            return str(error)[:300]
    return body.strip()[:300]
