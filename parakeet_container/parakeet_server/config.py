"""Server settings, read from the environment (the container's `docker run -e ...`)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """What the server loads and how much work it accepts."""

    host: str = "0.0.0.0"
    port: int = 8000
    asr_model: str = "nvidia/parakeet-tdt-0.6b-v3"
    # Streaming Sortformer v2: CC-BY-4.0 and built for long recordings (docs/diarization.md).
    diarization_model: str = "nvidia/diar_streaming_sortformer_4spk-v2"
    embedding_model: str = "nvidia/speakerverification_en_titanet_large"
    device: str = "cuda"
    max_upload_bytes: int = 1024 * 1024 * 1024  # 16 kHz s16 mono: about 9 hours
    max_audio_s: float = 4 * 3600.0  # longer inputs get a 413
    asr_window_s: float = 600.0  # Parakeet's full attention is comfortable up to ~20 min
    diar_window_s: float = 1200.0  # keep clear of the >30 min drift of issue NeMo#15711
    window_search_s: float = 20.0  # how far back from a window edge to look for a pause
    min_fingerprint_speech_s: float = 2.0  # less clean speech: fingerprint is null
    max_fingerprint_speech_s: float = 30.0  # enough for a stable TitaNet embedding
    # diarize-chunk: shorter segments get a null print of their own (the contract's
    # segment_fingerprint_min_s, the length benchmarks/eval_segment_names.py chose).
    segment_fingerprint_min_s: float = 1.0
    speaker_activity_threshold: float = 0.5  # sigmoid level that counts as "speaking"


_ENV = {
    "host": ("PARAKEET_HOST", str),
    "port": ("PARAKEET_PORT", int),
    "asr_model": ("PARAKEET_ASR_MODEL", str),
    "diarization_model": ("PARAKEET_DIAR_MODEL", str),
    "embedding_model": ("PARAKEET_EMBEDDING_MODEL", str),
    "device": ("PARAKEET_DEVICE", str),
    "max_upload_bytes": ("PARAKEET_MAX_UPLOAD_BYTES", int),
    "max_audio_s": ("PARAKEET_MAX_AUDIO_S", float),
    "asr_window_s": ("PARAKEET_ASR_WINDOW_S", float),
    "diar_window_s": ("PARAKEET_DIAR_WINDOW_S", float),
    "min_fingerprint_speech_s": ("PARAKEET_MIN_FINGERPRINT_SPEECH_S", float),
    "segment_fingerprint_min_s": ("PARAKEET_SEGMENT_FINGERPRINT_MIN_S", float),
}


class ConfigError(ValueError):
    """An environment variable holds a value the server cannot use."""


def config_from_env(env: Mapping[str, str] | None = None) -> ServerConfig:
    """Build the config from `PARAKEET_*` variables; unknown or unset ones keep defaults."""
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    for field_name, (var, kind) in _ENV.items():
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        try:
            values[field_name] = kind(raw)
        except ValueError as err:
            raise ConfigError(f"{var}={raw!r} is not a valid {kind.__name__}") from err
    config = ServerConfig(**values)  # type: ignore[arg-type]
    if config.max_audio_s <= 0 or config.asr_window_s <= 0 or config.diar_window_s <= 0:
        raise ConfigError("durations must be positive")
    # Not zero: a print of a few milliseconds is noise, and TitaNet needs some audio to pool.
    shortest = config.segment_fingerprint_min_s
    if not (math.isfinite(shortest) and shortest > 0):
        raise ConfigError(
            "PARAKEET_SEGMENT_FINGERPRINT_MIN_S must be a positive number of seconds, "
            f"not {shortest}"
        )
    return config
