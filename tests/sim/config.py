"""Settings for one simulated cluster; every field has a default so tests name only what matters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

DEFAULT_SERVED_MODEL = "RedHatAI/Qwen3.6-35B-A3B-NVFP4"
PARAKEET_MODEL = "nvidia/parakeet-tdt-0.6b-v3"
MAGPIE_MODEL = "nvidia/magpie-tts-multilingual"
# The simulated diarizer's speaker encoder (tests/sim/diarization.py ENCODERS).
SpeakerEncoderName = Literal["ge2e", "campplus"]


@dataclass(slots=True)
class SimConfig:
    """What the simulated GPU cluster looks like and how fast it behaves."""

    nodes: int = 2
    authorized_keys: list[str] = field(default_factory=list)  # authorized_keys lines
    username: str = "spark"
    load_seconds: float = 1.5  # vLLM model load time after `vllm serve` / `docker start`
    token_rate: float = 200.0  # generated tokens per second per request
    repo_path: str = "~/spark-vllm-docker"
    served_model: str = DEFAULT_SERVED_MODEL
    max_model_len: int = 32768
    host: str = "127.0.0.1"
    restart_delay: float = 0.3  # a speech container's boot time after start/restart
    stop_delay: float = 0.05  # time `docker stop` takes
    max_num_seqs: int = 8  # concurrent vLLM requests; more wait in the queue
    default_max_tokens: int = 32  # tokens generated when a request sets no max_tokens
    kv_cache_tokens: int = 4096  # KV cache capacity behind vllm:kv_cache_usage_perc
    updates_behind: int = 0  # commits `git rev-list --count HEAD..@{u}` reports
    download_seconds: float = 0.3  # wall time of a whole simulated `hf download`
    download_rate: float = 140e6  # bytes/s the progress bars print (virtual, not wall time)
    default_model_bytes: int = 21_300_000_000  # size of a repo not named in model_bytes
    model_bytes: dict[str, int] = field(default_factory=dict)  # repo id -> total bytes
    disk_bytes: int = 3_936_574_578_688  # each node's home filesystem (a 4 TB NVMe)
    disk_free_bytes: int = 1_204_333_912_064
    # Repos already in every node's Hugging Face cache at start (their bytes are taken from
    # disk_free_bytes); every other repo has to be downloaded first.
    cached_models: tuple[str, ...] = ()
    build_seconds: float = 0.3  # wall time of `./build-and-copy.sh -c`
    missing_repos: tuple[str, ...] = ("nonexistent-org/missing-model",)
    max_upload_bytes: int = 64 * 1024 * 1024
    magpie_max_chars: int = 2000
    # Simulated Parakeet: recognitions served at once (one pocketsphinx decoder each), as a GPU
    # server answers concurrent requests; the default matches the gateway's chunk_concurrency.
    parakeet_decoders: int = 2
    # Simulated diarization's speaker encoder: Resemblyzer's GE2E, or 3D-Speaker's CAM++ which
    # tells voices apart far better (docs/diarization.md, "The stand-in encoder").
    speaker_encoder: SpeakerEncoderName = "ge2e"

    def __post_init__(self) -> None:
        if self.nodes < 1:
            raise ValueError("a cluster needs at least one node")
        if self.load_seconds < 0 or self.token_rate <= 0:
            raise ValueError("load_seconds must be >= 0 and token_rate > 0")
        if self.parakeet_decoders < 1:
            raise ValueError("parakeet_decoders must be at least 1")
        if self.speaker_encoder not in get_args(SpeakerEncoderName):
            raise ValueError(f"speaker_encoder must be one of {get_args(SpeakerEncoderName)}")
