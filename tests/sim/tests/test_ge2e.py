"""The simulator's speaker encoder: Resemblyzer's GE2E weights, read without torch, run in numpy."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from tests.sim.ge2e import GE2EEncoder, WeightsError, load_state, weights_path
from tests.speakers.voices import voice

REFERENCE = Path(__file__).parents[2] / "speakers" / "data" / "ge2e_reference.json"


def test_weights_have_the_published_architecture() -> None:
    state = load_state(weights_path())
    assert state["lstm.weight_ih_l0"].shape == (1024, 40)  # 4 gates x 256, 40 mel bands
    for layer in range(3):
        assert state[f"lstm.weight_hh_l{layer}"].shape == (1024, 256)
        assert state[f"lstm.bias_ih_l{layer}"].shape == (1024,)
    assert state["linear.weight"].shape == (256, 256)
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in state.values())


def test_embeddings_match_the_package_on_real_voices() -> None:
    """Resemblyzer's own answers (made with PyTorch by data/make_ge2e_reference.py)."""
    reference = json.loads(REFERENCE.read_text())
    clip = int(reference["clip_s"] * 16_000)
    theirs = {name: np.array(v) for name, v in reference["embeddings"].items()}
    for name, expected in theirs.items():
        ours = GE2EEncoder.embed_utterance(voice(name)[:clip].astype(np.float32) / 32768)
        assert ours.shape == (256,)
        assert float(ours @ expected) >= 0.999, name
        # The check has teeth: every other voice's reference is much farther.
        assert all(float(ours @ other) < 0.8 for n, other in theirs.items() if n != name)


def _legacy_file(path: Path, payload: object) -> Path:
    """A file laid out like a legacy checkpoint around `payload`."""
    with path.open("wb") as f:
        for part in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(part, f, protocol=2)
        pickle.dump(payload, f, protocol=2)
        pickle.dump([], f, protocol=2)  # storage keys: none
    return path


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch pwned",))


def test_refuses_anything_but_tensors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WeightsError, match=r"(posix|os)\.system"):
        load_state(_legacy_file(tmp_path / "evil.pt", {"model_state": _Exploit()}))
    assert not (tmp_path / "pwned").exists()
    # Refused in the header pickles too.
    evil_header = tmp_path / "header.pt"
    evil_header.write_bytes(pickle.dumps(_Exploit(), protocol=2))
    with pytest.raises(WeightsError):
        load_state(evil_header)
    assert not (tmp_path / "pwned").exists()


def test_damaged_checkpoints_are_clear_errors(tmp_path: Path) -> None:
    good = weights_path().read_bytes()
    cases = [("empty", b""), ("text", b"not a checkpoint"), ("cut", good[: len(good) // 2])]
    for name, data in cases:
        path = tmp_path / f"{name}.pt"
        path.write_bytes(data)
        with pytest.raises(WeightsError):
            load_state(path)
    with pytest.raises(WeightsError, match="not a tensor"):
        load_state(_legacy_file(tmp_path / "odd.pt", {"model_state": {"w": 1.0}}))
