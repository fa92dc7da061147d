"""Gateway settings: one frozen dataclass, loaded from add-on options or a YAML/JSON file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import voluptuous as vol
import yaml

from .speakers.linking import DEFAULT_LINK_THRESHOLD, DEFAULT_REJOIN_THRESHOLD
from .speakers.pipeline import DEFAULT_SPLIT_DISTANCE
from .speakers.turns import DEFAULT_LOW_CONFIDENCE
from .speakers.voiceprints import DEFAULT_CONFIRM_MARGIN, DEFAULT_NAME_THRESHOLD

SPEECH_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
DEFAULT_PORT = 8080
SUPERVISOR_CORE_URL = "http://supervisor/core/api"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds allowed for each kind of upstream call (and the client's idle stream, and the
    client's first request head and each request body: `body` seconds, plus one per 500
    bytes received for a body)."""

    connect: float = 5.0
    chat: float = 600.0  # whole non-streamed completion
    stream_idle: float = 120.0  # longest pause between two streamed chunks
    transcription: float = 300.0
    diarization: float = 900.0
    speech: float = 120.0
    decode: float = 120.0  # one upload's decoding, in a decoder process
    health: float = 5.0
    body: float = 20.0  # a first request head; a body's first seconds (body_deadline.py)


@dataclass(frozen=True, slots=True)
class ConcurrencyBudgets:
    """Requests in flight per upstream; one slow service cannot take the others' slots."""

    chat: int = 64  # vLLM batches many sequences at once
    stt: int = 8  # Parakeet works on a few requests at a time; more only queue on the GPU
    tts: int = 8
    speakers: int = 2  # long recordings: each fans out into chunks of its own

    def as_dict(self) -> dict[str, int]:
        return {item.name: getattr(self, item.name) for item in fields(self)}


# OpenAI's voice names, mapped to Magpie voices so apps that only know them still work.
DEFAULT_VOICE_ALIASES: Mapping[str, str] = {
    "alloy": "Magpie-Multilingual.EN-US.Aria",
    "ash": "Magpie-Multilingual.EN-US.Jason",
    "ballad": "Magpie-Multilingual.EN-US.Jason",
    "coral": "Magpie-Multilingual.EN-US.Mia",
    "echo": "Magpie-Multilingual.EN-US.Jason",
    "fable": "Magpie-Multilingual.EN-US.Mia",
    "nova": "Magpie-Multilingual.EN-US.Mia",
    "onyx": "Magpie-Multilingual.EN-US.Jason",
    "sage": "Magpie-Multilingual.EN-US.Aria",
    "shimmer": "Magpie-Multilingual.EN-US.Aria",
    "verse": "Magpie-Multilingual.EN-US.Jason",
}


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """Everything the gateway needs; built once at start and shared read-only."""

    vllm_url: str | None = None
    parakeet_url: str | None = None
    magpie_url: str | None = None
    api_keys: tuple[str, ...] = ()
    auth_required: bool = True
    # OpenAI voice names (and any user alias) -> Magpie voice name.
    voice_aliases: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_VOICE_ALIASES))
    default_voice: str = "Magpie-Multilingual.EN-US.Aria"
    default_speech_format: str = "mp3"
    magpie_sample_rate: int = 22050
    magpie_max_chars: int = 2000  # NIM limit per HTTP request
    tts_chunk_chars: int = 200  # about 12 s of speech: under Magpie's 20 s offline cap
    max_speech_input_chars: int = 4096  # OpenAI's limit on `input`
    max_upload_bytes: int = 200 * 1024 * 1024
    max_json_bytes: int = 1024 * 1024
    max_audio_seconds: float = 4 * 3600.0  # decoded length cap: a small file can expand a lot
    max_concurrent_requests: int = 256  # beyond this the gateway answers 429
    decode_workers: int = 2  # uploads decoded at once, in long-lived decoder processes
    # Decoded audio all requests may hold at once (on disk, 115 MB per hour).
    max_audio_in_flight_seconds: float = 8 * 3600.0
    concurrency: ConcurrencyBudgets = field(default_factory=ConcurrencyBudgets)
    # Chat requests held while vLLM is down or loading a model (a swap), released when it serves.
    hold_max_requests: int = 64  # beyond this a request is refused at once (503)
    hold_timeout_s: float = 300.0  # Open WebUI's own client timeout is 300 s
    list_speech_models: bool = False  # /v1/models lists chat models only (speech: /v1/audio/models)
    # A chat request naming another catalog model has Home Assistant swap to it (llama-swap).
    swap_on_request: bool = False
    timeouts: Timeouts = field(default_factory=Timeouts)
    cors_origins: tuple[str, ...] = ()
    ha_url: str | None = None  # Home Assistant's URL when standalone, e.g. http://ha:8123
    ha_token: str | None = None
    # The Spark Control model select in front of this vLLM, when HA has several clusters.
    ha_model_select: str | None = None
    data_dir: Path = Path("/data")
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    public_url: str | None = None  # what discovery announces; derived from hostname if unset
    stt_model: str = "nvidia/parakeet-tdt-0.6b-v3"
    stt_model_aliases: tuple[str, ...] = ("whisper-1", "parakeet", "gpt-4o-transcribe")
    tts_model: str = "nvidia/magpie-tts-multilingual"
    tts_model_aliases: tuple[str, ...] = ("tts-1", "tts-1-hd", "magpie", "gpt-4o-mini-tts")
    # Long-audio and speaker settings, used by spark_gateway.speakers.
    long_audio_threshold_s: float = 120.0  # longer recordings are cut into chunks
    chunk_concurrency: int = 2
    chunk_target_s: float = 120.0  # speakers.chunking.DEFAULT_CHUNK_S: measured for 6 speakers
    chunk_overlap_s: float = 2.0
    # A chunk the diarizer was unsure of is diarized again in halves down to pieces this long
    # (speakers.pipeline.MIN_PIECE_S: chosen on the tuning voices).
    speaker_min_piece_s: float = 30.0
    # Cosine distances between voice prints, on the speaker encoder's own scale (the defaults'
    # comments say where they come from), and the turn confidence under which a turn is unsure.
    speaker_link_threshold: float = DEFAULT_LINK_THRESHOLD
    speaker_rejoin_threshold: float = DEFAULT_REJOIN_THRESHOLD
    speaker_split_distance: float = DEFAULT_SPLIT_DISTANCE
    speaker_name_threshold: float = DEFAULT_NAME_THRESHOLD
    speaker_confirm_margin: float = DEFAULT_CONFIRM_MARGIN
    speaker_low_confidence: float = DEFAULT_LOW_CONFIDENCE
    log_level: str = "info"


class ConfigError(ValueError):
    """The options or config file are invalid."""


def _url(value: Any) -> str | None:
    if value in (None, ""):
        return None
    text = str(vol.Url()(value))
    return text.rstrip("/")


_TIMEOUTS_SCHEMA = vol.Schema(
    {
        vol.Optional(item.name): vol.All(vol.Coerce(float), vol.Range(min=0.1, max=86400))
        for item in fields(Timeouts)
    }
)

_CONCURRENCY_SCHEMA = vol.Schema(
    {
        vol.Optional(item.name): vol.All(int, vol.Range(min=1, max=10000))
        for item in fields(ConcurrencyBudgets)
    }
)

# A cosine distance between two unit voice prints.
_DISTANCE = vol.All(vol.Coerce(float), vol.Range(min=0, max=2))

_ALIAS_ENTRY = vol.Schema({vol.Required("alias"): str, vol.Required("voice"): str})

OPTIONS_SCHEMA = vol.Schema(
    {
        vol.Optional("vllm_url"): _url,
        vol.Optional("parakeet_url"): _url,
        vol.Optional("magpie_url"): _url,
        vol.Optional("api_keys"): vol.Any(None, [vol.All(str, vol.Length(min=8))]),
        vol.Optional("auth_required"): bool,
        # A mapping, or the add-on UI's list of {alias, voice} pairs.
        vol.Optional("voice_aliases"): vol.Any(None, {str: str}, [_ALIAS_ENTRY]),
        vol.Optional("default_voice"): vol.All(str, vol.Length(min=1)),
        vol.Optional("default_speech_format"): vol.In(SPEECH_FORMATS),
        vol.Optional("magpie_sample_rate"): vol.All(int, vol.Range(min=8000, max=48000)),
        vol.Optional("tts_chunk_chars"): vol.All(int, vol.Range(min=50, max=2000)),
        vol.Optional("max_upload_mb"): vol.All(vol.Coerce(float), vol.Range(min=0.001, max=4096)),
        vol.Optional("max_audio_minutes"): vol.All(vol.Coerce(float), vol.Range(min=0.1, max=1440)),
        vol.Optional("max_concurrent_requests"): vol.All(int, vol.Range(min=1, max=100000)),
        vol.Optional("decode_workers"): vol.All(int, vol.Range(min=1, max=32)),
        vol.Optional("max_audio_in_flight_minutes"): vol.All(
            vol.Coerce(float), vol.Range(min=1, max=10080)
        ),
        vol.Optional("concurrency"): _CONCURRENCY_SCHEMA,
        vol.Optional("hold_max_requests"): vol.All(int, vol.Range(min=0, max=100000)),
        vol.Optional("hold_timeout_s"): vol.All(vol.Coerce(float), vol.Range(min=0, max=86400)),
        vol.Optional("list_speech_models"): bool,
        vol.Optional("swap_on_request"): bool,
        vol.Optional("timeouts"): _TIMEOUTS_SCHEMA,
        vol.Optional("cors_origins"): vol.Any(None, [str]),
        vol.Optional("ha_url"): _url,
        vol.Optional("ha_token"): vol.Any(None, str),
        vol.Optional("ha_model_select"): vol.Any(None, vol.Match(r"^select\.[a-z0-9_]+$")),
        vol.Optional("data_dir"): str,
        vol.Optional("host"): str,
        vol.Optional("port"): vol.All(int, vol.Range(min=1, max=65535)),
        vol.Optional("public_url"): _url,
        vol.Optional("long_audio_threshold_s"): vol.All(vol.Coerce(float), vol.Range(min=1)),
        vol.Optional("speaker_name_threshold"): _DISTANCE,
        vol.Optional("chunk_concurrency"): vol.All(int, vol.Range(min=1, max=32)),
        vol.Optional("chunk_target_s"): vol.All(vol.Coerce(float), vol.Range(min=10)),
        vol.Optional("chunk_overlap_s"): vol.All(vol.Coerce(float), vol.Range(min=0, max=30)),
        vol.Optional("speaker_min_piece_s"): vol.All(vol.Coerce(float), vol.Range(min=5)),
        vol.Optional("speaker_link_threshold"): _DISTANCE,
        vol.Optional("speaker_rejoin_threshold"): _DISTANCE,
        vol.Optional("speaker_split_distance"): _DISTANCE,
        vol.Optional("speaker_confirm_margin"): _DISTANCE,
        vol.Optional("speaker_low_confidence"): vol.All(vol.Coerce(float), vol.Range(min=0, max=1)),
        vol.Optional("log_level"): vol.In(("debug", "info", "warning", "error")),
    },
    extra=vol.REMOVE_EXTRA,
)


def config_from_options(options: Mapping[str, Any]) -> GatewayConfig:
    """Validate add-on options (or a config file's mapping) into a GatewayConfig."""
    try:
        opts = OPTIONS_SCHEMA(dict(options))
    except vol.Invalid as err:
        raise ConfigError(
            f"invalid option {'.'.join(map(str, err.path)) or '?'}: {err.msg}"
        ) from err
    kwargs: dict[str, Any] = {}
    for name in (
        "vllm_url",
        "parakeet_url",
        "magpie_url",
        "auth_required",
        "default_voice",
        "default_speech_format",
        "magpie_sample_rate",
        "tts_chunk_chars",
        "max_concurrent_requests",
        "decode_workers",
        "hold_max_requests",
        "hold_timeout_s",
        "list_speech_models",
        "swap_on_request",
        "ha_url",
        "ha_model_select",
        "host",
        "port",
        "public_url",
        "long_audio_threshold_s",
        "chunk_concurrency",
        "chunk_target_s",
        "chunk_overlap_s",
        "speaker_min_piece_s",
        "speaker_link_threshold",
        "speaker_rejoin_threshold",
        "speaker_split_distance",
        "speaker_name_threshold",
        "speaker_confirm_margin",
        "speaker_low_confidence",
        "log_level",
    ):
        if opts.get(name) is not None:
            kwargs[name] = opts[name]
    if opts.get("ha_token"):
        kwargs["ha_token"] = opts["ha_token"]
    kwargs["api_keys"] = tuple(opts.get("api_keys") or ())
    aliases = dict(DEFAULT_VOICE_ALIASES)
    raw_aliases = opts.get("voice_aliases") or {}
    if isinstance(raw_aliases, list):
        raw_aliases = {entry["alias"]: entry["voice"] for entry in raw_aliases}
    aliases.update(raw_aliases)
    kwargs["voice_aliases"] = aliases
    if opts.get("max_upload_mb") is not None:
        kwargs["max_upload_bytes"] = int(opts["max_upload_mb"] * 1024 * 1024)
    if opts.get("max_audio_minutes") is not None:
        kwargs["max_audio_seconds"] = opts["max_audio_minutes"] * 60.0
    if opts.get("max_audio_in_flight_minutes") is not None:
        kwargs["max_audio_in_flight_seconds"] = opts["max_audio_in_flight_minutes"] * 60.0
    if opts.get("timeouts"):
        kwargs["timeouts"] = Timeouts(**opts["timeouts"])
    if opts.get("concurrency"):
        kwargs["concurrency"] = ConcurrencyBudgets(**opts["concurrency"])
    kwargs["cors_origins"] = tuple(opts.get("cors_origins") or ())
    if opts.get("data_dir"):
        kwargs["data_dir"] = Path(opts["data_dir"])
    return GatewayConfig(**kwargs)


def load_config(path: Path | str) -> GatewayConfig:
    """Read a YAML or JSON file (JSON is valid YAML, e.g. Supervisor's /data/options.json)."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read config {path}: {err}") from err
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config {path} must hold a mapping of options")
    return config_from_options(raw)


def supervisor_token() -> str | None:
    """The token Supervisor gives add-ons; None when running standalone."""
    return os.environ.get("SUPERVISOR_TOKEN") or None
