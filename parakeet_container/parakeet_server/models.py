"""The boundary between the server and NeMo: three model objects, loaded once, lazily.

Only this module imports NeMo and torch, and only inside `nemo_loaders`, so everything else
runs without them. The calls and output shapes below are those of NeMo 3.0.0, checked against
the real classes by tests/container/nemo (the fast tests in tests/container use fakes
of the same shapes):

- ASR (`ASRModel`, parakeet-tdt = `EncDecRNNTBPEModel`): `transcribe([path], batch_size=1,
  timestamps=True, verbose=False)` → a list of `Hypothesis` with `.text` and
  `.timestamp["word"]` = `[{"word", "start_offset", "end_offset", "start", "end"}, ...]`
  (seconds; words carry no leading space; the last word's end may pass the audio's end).
- Sortformer (`SortformerEncLabelModel`): `diarize(audio=path, batch_size=1,
  include_tensor_outputs=True, verbose=False)` → `(lines, probs)`: `lines[0]` are
  `"start end speaker_k"` strings grouped by speaker, `probs[0]` a `(1, T, 4)` CPU tensor of
  sigmoid values, one row per 80 ms frame.
- TitaNet (`EncDecSpeakerLabelModel`): `infer_segment(np_1d_16k)` → `(emb (1, 192), logits)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np

from .config import ServerConfig

_LOGGER = logging.getLogger(__name__)

T = TypeVar("T")  # the container runs Python 3.11: no PEP 695 generics

# Streaming Sortformer v2 "30.4 s latency" preset (80 ms frames): best DER on the model card.
STREAMING_PRESET = {
    "chunk_len": 340,
    "chunk_right_context": 40,
    "fifo_len": 40,
    "spkcache_update_period": 300,
    "spkcache_len": 188,
}


class ModelLoadError(RuntimeError):
    """A model could not be loaded (HTTP 503)."""


class AsrModel(Protocol):
    def transcribe(
        self, audio: list[str], batch_size: int = 1, timestamps: bool = True, verbose: bool = True
    ) -> Any: ...


class DiarizationModel(Protocol):
    def diarize(
        self,
        audio: str,
        batch_size: int = 1,
        include_tensor_outputs: bool = False,
        verbose: bool = True,
    ) -> Any: ...


class EmbeddingModel(Protocol):
    def infer_segment(self, segment: np.ndarray) -> tuple[Any, Any]: ...


@dataclass(frozen=True, slots=True)
class Loaders:
    """How each model is created; `nemo_loaders` for the GPU, fakes in tests."""

    asr: Callable[[], AsrModel]
    diarization: Callable[[], DiarizationModel]
    embedding: Callable[[], EmbeddingModel]
    gpu_memory: Callable[[], dict[str, int] | None] = lambda: None
    inference: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext


@dataclass
class ModelRegistry:
    """Loads each model on first use, once, and serialises GPU work on one thread."""

    loaders: Loaders
    _models: dict[str, Any] = field(default_factory=dict)
    _load_lock: threading.Lock = field(default_factory=threading.Lock)
    # One lane per model family: ASR and diarization overlap on the GPU, jobs of one family
    # run one at a time (bounded memory, no thrashing between requests).
    _lanes: dict[str, asyncio.Lock] = field(default_factory=dict)

    @property
    def loaded(self) -> dict[str, bool]:
        return {name: name in self._models for name in ("asr", "diarization", "embedding")}

    def _get(self, name: str) -> Any:
        with self._load_lock:
            if name not in self._models:
                _LOGGER.info("loading the %s model", name)
                try:
                    self._models[name] = getattr(self.loaders, name)()
                except Exception as err:  # download, CUDA or checkpoint trouble
                    raise ModelLoadError(f"the {name} model could not be loaded: {err}") from err
            return self._models[name]

    def asr(self) -> AsrModel:
        model: AsrModel = self._get("asr")
        return model

    def diarization(self) -> DiarizationModel:
        model: DiarizationModel = self._get("diarization")
        return model

    def embedding(self) -> EmbeddingModel:
        model: EmbeddingModel = self._get("embedding")
        return model

    @contextlib.contextmanager
    def inference(self) -> Iterator[None]:
        with self.loaders.inference():
            yield

    async def run(self, work: Callable[[], T], *, lane: str) -> T:
        """Run blocking model work off the event loop, one job at a time per lane."""
        lock = self._lanes.setdefault(lane, asyncio.Lock())
        async with lock:
            return await asyncio.to_thread(work)


def to_numpy(value: Any) -> np.ndarray:
    """A torch tensor (any device) or array-like as a float numpy array."""
    if hasattr(value, "detach"):
        value = value.detach().float().cpu().numpy()
    return np.asarray(value, dtype=np.float32)


def _load(model_class: Any, name: str, device: str) -> Any:  # pragma: no cover - NeMo venv
    """A released model by name (Hugging Face hub, cached under HF_HOME) or a local `.nemo` file,
    in inference mode."""
    if name.endswith(".nemo"):
        model = model_class.restore_from(name, map_location=device)
    else:
        model = model_class.from_pretrained(name, map_location=device)
    model.eval()
    return model


def apply_streaming_preset(model: Any) -> None:  # pragma: no cover - NeMo venv
    """Give a streaming Sortformer the latency preset, checked by NeMo's own validation (an
    unknown setting name would otherwise become a new attribute that nothing reads)."""
    if not getattr(model, "streaming_mode", False):
        return
    modules = model.sortformer_modules
    for key, value in STREAMING_PRESET.items():
        if not hasattr(modules, key):
            raise ModelLoadError(f"this Sortformer has no streaming setting {key!r}")
        setattr(modules, key, value)
    modules._check_streaming_parameters()  # NeMo's own check of the combination


def nemo_loaders(config: ServerConfig) -> Loaders:  # pragma: no cover - NeMo venv
    """Loaders for the real NeMo models (imported here only, on first use)."""

    def asr() -> AsrModel:
        from nemo.collections.asr.models import ASRModel

        return _load(ASRModel, config.asr_model, config.device)  # type: ignore[no-any-return]

    def diarization() -> DiarizationModel:
        from nemo.collections.asr.models import SortformerEncLabelModel

        model = _load(SortformerEncLabelModel, config.diarization_model, config.device)
        apply_streaming_preset(model)
        return model  # type: ignore[no-any-return]

    def embedding() -> EmbeddingModel:
        from nemo.collections.asr.models import EncDecSpeakerLabelModel

        return _load(EncDecSpeakerLabelModel, config.embedding_model, config.device)  # type: ignore[no-any-return]

    def gpu_memory() -> dict[str, int] | None:
        import torch

        if not torch.cuda.is_available():
            return None
        free, total = torch.cuda.mem_get_info()
        return {
            "free_bytes": int(free),
            "total_bytes": int(total),
            "allocated_bytes": int(torch.cuda.memory_allocated()),
        }

    def inference() -> contextlib.AbstractContextManager[Any]:
        import torch

        return torch.inference_mode()

    return Loaders(asr, diarization, embedding, gpu_memory, inference)
