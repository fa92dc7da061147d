"""A real speaker encoder for the simulator, in numpy: the GE2E LSTM that Resemblyzer ships.

The `resemblyzer` wheel (Apache-2.0) carries trained weights, `resemblyzer/pretrained.pt`: a
3-layer LSTM (40 mel bands in, 256 hidden), the last layer's final state through a 256 → 256
linear layer, ReLU and L2 normalisation, trained with the generalised end-to-end loss on 1.6 s
partial utterances. The package runs it with PyTorch, which the test environments cannot
install; so the wheel is installed without its dependencies (requirements_test_nodeps.txt), its
package is never imported, and this module reads the weights from the file and runs the network
with numpy. docs/diarization.md records how it was checked against the package itself.

The file is PyTorch's legacy (pre-zip) checkpoint format: three small pickles (magic number,
protocol version, system info), the checkpoint pickle whose tensors point at storages by key, the
list of storage keys, then each storage as a little-endian int64 element count and its raw bytes.
Only the three globals such a checkpoint needs are resolved; anything else is refused.
"""

from __future__ import annotations

import importlib.util
import pickle
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, ClassVar

import librosa
import numpy as np

from tests.sim.tensor_views import CheckpointUnpickler, WeightsError, copy_view

SAMPLE_RATE = 16_000
N_MELS = 40
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
PARTIAL_FRAMES = 160  # 1.6 s, the length the encoder was trained on
HIDDEN = 256
LAYERS = 3
TARGET_DBFS = -30.0  # quiet recordings are raised to this level first, as in training
_MAGIC = 0x1950A86A20F9469CFC6C
_BATCH = 256  # partials per LSTM pass (bigger matmuls; state stays ~3 MB)


def weights_path() -> Path:
    """Where the installed wheel put `pretrained.pt` (found without importing the package)."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            "The simulator's speaker encoder needs the resemblyzer==0.1.4 wheel, installed "
            "without its dependencies: pip install --no-deps -r requirements_test_nodeps.txt"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"


@dataclass(frozen=True, slots=True)
class _Storage:
    key: str
    size: int


class _FloatStorage:
    """Stands for `torch.FloatStorage` in persistent ids; never instantiated."""


class _CheckpointUnpickler(CheckpointUnpickler):
    storages: ClassVar[dict[str, object]] = {"FloatStorage": _FloatStorage}

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise WeightsError(f"Unexpected persistent id in the checkpoint: {pid!r}")
        _, storage_type, key, _location, size, view = pid
        if storage_type is not _FloatStorage or view is not None:
            raise WeightsError("Only plain float32 storages are expected in the checkpoint.")
        return _Storage(str(key), int(size))


def _read_storages(f: IO[bytes], keys: list[str]) -> dict[str, np.ndarray]:
    storages = {}
    for key in keys:
        (count,) = struct.unpack("<q", f.read(8))
        data = f.read(4 * count)
        if len(data) != 4 * count:
            raise WeightsError("The checkpoint ends inside a storage.")
        storages[key] = np.frombuffer(data, dtype="<f4")
    return storages


def load_state(path: Path) -> dict[str, np.ndarray]:
    """The checkpoint's `model_state` as float32 arrays, read without torch."""
    try:
        with path.open("rb") as f:
            # Every pickle in the file goes through the restricted unpickler.
            header = [_CheckpointUnpickler(f).load() for _ in range(3)]
            if header[0] != _MAGIC or header[1] != 1001 or not header[2].get("little_endian"):
                raise WeightsError(f"{path} is not a legacy little-endian PyTorch checkpoint.")
            checkpoint = _CheckpointUnpickler(f).load()
            keys = _CheckpointUnpickler(f).load()
            if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
                raise WeightsError("The checkpoint's storage key list is malformed.")
            storages = _read_storages(f, keys)
        model = checkpoint["model_state"]
        return {name: _tensor(name, ref, storages) for name, ref in model.items()}
    except (pickle.UnpicklingError, EOFError, struct.error, KeyError, TypeError,
            AttributeError, ValueError) as err:  # fmt: skip
        raise WeightsError(f"{path} is not a readable GE2E checkpoint: {err!r}") from err


def _tensor(name: str, ref: object, storages: dict[str, np.ndarray]) -> np.ndarray:
    storage = getattr(ref, "storage", None)
    flat = storages[storage.key] if isinstance(storage, _Storage) else np.zeros(0, np.float32)
    return copy_view(name, ref, flat, np.float32)


class GE2EEncoder:
    """Mel features and the LSTM forward pass, loaded once on first use."""

    _lock = threading.Lock()
    _state: dict[str, np.ndarray] | None = None

    @classmethod
    def _weights(cls) -> dict[str, np.ndarray]:
        with cls._lock:
            if cls._state is None:
                state = load_state(weights_path())
                # Per layer one (inputs + 256, 1024) matrix for [x, h] @ W, the two biases
                # summed; the input, forget and output columns are halved (and their bias)
                # because the logistic is computed as tanh(z / 2) / 2 + 1/2, so one tanh call
                # serves all four gates (PyTorch's order: input, forget, cell, output).
                half = np.full(4 * HIDDEN, 0.5, np.float32)
                half[2 * HIDDEN : 3 * HIDDEN] = 1.0
                cls._state = {
                    **{
                        f"w{k}": np.concatenate(
                            [state[f"lstm.weight_ih_l{k}"].T, state[f"lstm.weight_hh_l{k}"].T]
                        )
                        * half
                        for k in range(LAYERS)
                    },
                    **{
                        f"b{k}": (state[f"lstm.bias_ih_l{k}"] + state[f"lstm.bias_hh_l{k}"]) * half
                        for k in range(LAYERS)
                    },
                    "linear": state["linear.weight"].T.copy(),
                    "linear_b": state["linear.bias"],
                }
            return cls._state

    @staticmethod
    def normalise_volume(samples: np.ndarray) -> np.ndarray:
        """Raise (never lower) the level to -30 dBFS, as the encoder's training audio was."""
        rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
        if rms <= 0.0:
            return samples
        gain_db = TARGET_DBFS - 20.0 * np.log10(rms)
        return samples * np.float32(10 ** (gain_db / 20)) if gain_db > 0 else samples

    @staticmethod
    def mel(samples: np.ndarray) -> np.ndarray:
        """(frames, 40) mel power spectrogram, 25 ms Hann window, 10 ms hop (no log)."""
        spec = librosa.feature.melspectrogram(
            y=samples.astype(np.float32), sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP,
            n_mels=N_MELS,
        )  # fmt: skip
        return spec.astype(np.float32).T

    @classmethod
    def embed(cls, partials: np.ndarray) -> np.ndarray:
        """(n, frames, 40) mel partials → (n, 256) unit embeddings (all components ≥ 0)."""
        if len(partials) == 0:
            return np.zeros((0, HIDDEN), np.float32)
        return np.concatenate(
            [cls._forward(partials[i : i + _BATCH]) for i in range(0, len(partials), _BATCH)]
        )

    @classmethod
    def _forward(cls, x: np.ndarray) -> np.ndarray:
        """All three layers advance one frame at a time, each with one fused matmul."""
        w = cls._weights()
        n, steps, _ = x.shape
        x = x.astype(np.float32)
        h = [np.zeros((n, HIDDEN), np.float32) for _ in range(LAYERS)]
        c = [np.zeros((n, HIDDEN), np.float32) for _ in range(LAYERS)]
        for t in range(steps):
            below = x[:, t]
            for k in range(LAYERS):
                z = np.tanh(np.concatenate([below, h[k]], axis=1) @ w[f"w{k}"] + w[f"b{k}"])
                i, f, g, o = np.split(z, 4, axis=1)
                c[k] = (f + 1) * 0.5 * c[k] + (i + 1) * 0.5 * g
                h[k] = below = (o + 1) * 0.5 * np.tanh(c[k])
        embedding = np.maximum(h[-1] @ w["linear"] + w["linear_b"], 0.0)
        norms = np.linalg.norm(embedding, axis=1, keepdims=True)
        return (embedding / np.maximum(norms, 1e-12)).astype(np.float32)

    @classmethod
    def embed_utterance(cls, samples: np.ndarray) -> np.ndarray:
        """One unit vector for a clip: 1.6 s partials every 0.8 s, mean, re-normalised."""
        feats = cls.mel(cls.normalise_volume(samples))
        step = PARTIAL_FRAMES // 2
        starts = range(0, max(len(feats) - PARTIAL_FRAMES, 0) + 1, step)
        partials = np.stack([_pad(feats[s : s + PARTIAL_FRAMES]) for s in starts])
        mean = cls.embed(partials).mean(axis=0)
        return mean / max(float(np.linalg.norm(mean)), 1e-12)


def _pad(frames: np.ndarray) -> np.ndarray:
    if len(frames) >= PARTIAL_FRAMES:
        return frames
    return np.pad(frames, ((0, PARTIAL_FRAMES - len(frames)), (0, 0)))
