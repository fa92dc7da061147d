"""The simulator's CAM++ encoder: 3D-Speaker's weights, read without torch, run in numpy."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from tests.sim.campplus import (
    WEIGHTS_SHA256,
    CAMPPlusEncoder,
    WeightsError,
    load_state,
    weights_path,
)
from tests.speakers.voices import voice

REFERENCE = Path(__file__).parents[2] / "speakers" / "data" / "campplus_reference.json"


def test_weights_are_the_pinned_file_with_the_published_architecture() -> None:
    path = weights_path()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == WEIGHTS_SHA256
    state = load_state(path)
    assert state["head.conv1.weight"].shape == (32, 1, 3, 3)  # 2-D front end, 32 channels
    assert state["xvector.tdnn.linear.weight"].shape == (128, 320, 5)  # 32 channels x 10 bands
    assert sum(k.endswith("cam_layer.linear_local.weight") for k in state) == 12 + 24 + 16
    assert state["xvector.dense.linear.weight"].shape == (192, 1024, 1)  # mean + std of 512
    assert "xvector.dense.nonlinear.batchnorm.weight" not in state  # final BN has no affine
    floats = [v for k, v in state.items() if not k.endswith("num_batches_tracked")]
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in floats)


def test_embeddings_match_3d_speaker_on_real_voices() -> None:
    """3D-Speaker's own answers (made with PyTorch by data/make_campplus_reference.py)."""
    reference = json.loads(REFERENCE.read_text())
    clip = int(reference["clip_s"] * 16_000)
    theirs = {name: np.array(v) for name, v in reference["embeddings"].items()}
    for name, expected in theirs.items():
        ours = CAMPPlusEncoder.embed_utterance(voice(name)[:clip].astype(np.float32) / 32768)
        assert ours.shape == (192,)
        assert float(ours @ expected) >= 0.999, name
        # The check has teeth: every other voice's reference is far away.
        assert all(float(ours @ other) < 0.5 for n, other in theirs.items() if n != name)


def test_windows_of_one_voice_agree_and_differ_from_another() -> None:
    """1.6 s windows, as the diarizer cuts them, are each normalised and embedded alone."""
    frames = 160
    feats = {name: CAMPPlusEncoder.features(voice(name)[: 16_000 * 8] / 32768)
             for name in ("CARLO", "FEE083")}  # fmt: skip
    windows = {name: np.stack([f[s : s + frames] for s in range(0, len(f) - frames, 80)])
               for name, f in feats.items()}  # fmt: skip
    carlo, fee = (CAMPPlusEncoder.embed(windows[n]) for n in ("CARLO", "FEE083"))
    assert np.allclose(np.linalg.norm(carlo, axis=1), 1.0, atol=1e-5)
    same = carlo @ carlo.mean(axis=0)
    other = fee @ carlo.mean(axis=0)
    assert same.min() > other.max()
    # A window's answer does not depend on which others share its batch.
    assert np.allclose(CAMPPlusEncoder.embed(windows["CARLO"][3:4])[0], carlo[3], atol=1e-5)


def _zip_checkpoint(path: Path, payload: object, records: dict[str, bytes] | None = None) -> Path:
    """A file laid out like PyTorch's zip checkpoint around `payload`."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(payload, protocol=2))
        for key, data in (records or {}).items():
            archive.writestr(f"archive/data/{key}", data)
        archive.writestr("archive/version", "3\n")
    return path


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch pwned",))


def test_refuses_anything_but_tensors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WeightsError, match=r"(posix|os)\.system"):
        load_state(_zip_checkpoint(tmp_path / "evil.pt", OrderedDict(w=_Exploit())))
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(WeightsError, match="not a tensor"):
        load_state(_zip_checkpoint(tmp_path / "odd.pt", {"w": 1.0}))
    with pytest.raises(WeightsError, match="no state_dict"):
        load_state(_zip_checkpoint(tmp_path / "list.pt", [1, 2]))


def _as_torch(data: bytes) -> bytes:
    """Pickle bytes whose stand-in globals are renamed to the torch ones a checkpoint names."""
    for ours, theirs in ((b"_rebuild_stand_in", b"torch._utils\n_rebuild_tensor_v2"),
                         (b"_FloatStorage", b"torch\nFloatStorage")):  # fmt: skip
        data = data.replace(b"c" + __name__.encode() + b"\n" + ours, b"c" + theirs)
    return data


def _rebuild_stand_in(*_: object) -> None:
    """Pickled by reference, then renamed torch._utils._rebuild_tensor_v2."""


class _FloatStorage:
    """Pickled by reference, then renamed torch.FloatStorage."""


class _Tensor:
    def __init__(self, offset: int, shape: tuple[int, ...], count: int) -> None:
        self.offset, self.shape, self.count = offset, shape, count

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        stride = tuple(int(np.prod(self.shape[i + 1 :])) for i in range(len(self.shape)))
        storage = ("storage", _FloatStorage, "0", "cpu", self.count)
        return (_rebuild_stand_in, (storage, self.offset, self.shape, stride, False, OrderedDict()))


class _TensorPickler(pickle.Pickler):
    def persistent_id(self, obj: object) -> object:
        return obj if isinstance(obj, tuple) and obj[:1] == ("storage",) else None


def _tensor_checkpoint(
    path: Path, offset: int, shape: tuple[int, ...], count: int, record: bytes | None = None
) -> Path:
    """One float tensor viewing storage "0" of `count` elements (by default its record has them)."""
    buffer = io.BytesIO()
    _TensorPickler(buffer, protocol=2).dump(OrderedDict(w=_Tensor(offset, shape, count)))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", _as_torch(buffer.getvalue()))
        archive.writestr("archive/data/0", record or np.arange(count, dtype="<f4").tobytes())
    return path


def test_tensor_views_stay_inside_their_storage(tmp_path: Path) -> None:
    good = load_state(_tensor_checkpoint(tmp_path / "good.pt", 2, (2, 3), 8))
    assert good["w"].tolist() == [[2, 3, 4], [5, 6, 7]]
    with pytest.raises(WeightsError, match="outside its storage"):
        load_state(_tensor_checkpoint(tmp_path / "over.pt", 3, (2, 3), 8))
    with pytest.raises(WeightsError, match="malformed view"):
        load_state(_tensor_checkpoint(tmp_path / "neg.pt", -1, (2, 3), 8))


def test_damaged_checkpoints_are_clear_errors(tmp_path: Path) -> None:
    good = weights_path().read_bytes()
    cases = [("empty", b""), ("text", b"not a checkpoint"), ("cut", good[: len(good) // 2])]
    for name, data in cases:
        path = tmp_path / f"{name}.pt"
        path.write_bytes(data)
        with pytest.raises(WeightsError):
            load_state(path)
    no_pickle = tmp_path / "no_pickle.pt"
    with zipfile.ZipFile(no_pickle, "w") as archive:
        archive.writestr("archive/version", "3\n")
    with pytest.raises(WeightsError, match=r"data\.pkl"):
        load_state(no_pickle)
    with pytest.raises(WeightsError, match="wrong size"):
        load_state(_tensor_checkpoint(tmp_path / "short.pt", 0, (2,), 8, record=b"\0" * 16))
    # A small file that would unpack to far more than the real checkpoint is not unpacked.
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data/0", bytes(65 * 1024 * 1024))
    assert bomb.stat().st_size < 1024 * 1024
    with pytest.raises(WeightsError, match="far bigger"):
        load_state(bomb)
