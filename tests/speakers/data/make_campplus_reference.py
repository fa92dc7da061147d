"""Write campplus_reference.json: 3D-Speaker's own CAM++ embeddings of a few real voices.

tests/sim/campplus.py runs CAM++ in numpy; this file pins what 3D-Speaker's PyTorch model
answers with the same weights, so a test can check our features and forward pass without
PyTorch. Run it where PyTorch is, e.g. a Python 3.11 venv with torch (CPU), torchaudio, soundfile
and speakerlab-slim==0.1.0 (3D-Speaker's inference code: its CAMPPlus and FBank), after
scripts/_bootstrap.sh has put the checkpoint in .cache/sim-weights/:

    PYTHONPATH=. /path/to/venv311/bin/python tests/speakers/data/make_campplus_reference.py

Each clip is the first CLIP_S of a voice; features are 3D-Speaker's FBank (torchaudio's Kaldi
fbank, 80 bands, no dither, mean-normalised over the clip), embedded by CAMPPlus in eval mode.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import soundfile
import torch
from speakerlab.models.campplus.DTDNN import CAMPPlus

CLIP_S = 4.0
VOICES = ("ALLISON", "CARLO", "FEE083", "MEE009")
HERE = Path(__file__).parent
WEIGHTS = HERE.parents[2] / ".cache" / "sim-weights" / "campplus_cn_en_common.pt"


def kaldi() -> ModuleType:
    """torchaudio.compliance.kaldi; loaded from its file, beside an empty `torchaudio` module,
    when torchaudio's C++ extension does not load with the installed torch (its fbank is pure
    torch and uses nothing of the extension)."""
    try:
        import torchaudio.compliance.kaldi as module

        return module
    except OSError:
        spec = importlib.util.find_spec("torchaudio")
        assert spec is not None
        assert spec.submodule_search_locations
        path = Path(next(iter(spec.submodule_search_locations))) / "compliance" / "kaldi.py"
        file_spec = importlib.util.spec_from_file_location("kaldi_fbank", path)
        assert file_spec is not None
        assert file_spec.loader is not None
        for loaded in [m for m in sys.modules if m.startswith("torchaudio")]:
            del sys.modules[loaded]
        sys.modules["torchaudio"] = ModuleType("torchaudio")
        module = importlib.util.module_from_spec(file_spec)
        file_spec.loader.exec_module(module)
        return module


def main() -> None:
    fbank = kaldi().fbank
    model = CAMPPlus(feat_dim=80, embedding_size=192)
    model.load_state_dict(torch.load(WEIGHTS, map_location="cpu", weights_only=True))
    model.eval()
    out = {}
    for name in VOICES:
        samples, rate = soundfile.read(HERE / "voices" / f"{name}.flac", dtype="int16")
        assert rate == 16_000
        clip = torch.from_numpy(samples[: int(CLIP_S * rate)].astype(np.float32) / 32768)
        feats = fbank(clip[None], num_mel_bins=80, sample_frequency=rate, dither=0.0)
        feats = feats - feats.mean(0, keepdim=True)
        with torch.no_grad():
            embedding = model(feats[None])[0].numpy()
        out[name] = [round(float(v), 7) for v in embedding / np.linalg.norm(embedding)]
    target = HERE / "campplus_reference.json"
    lines = ",\n".join(f"  {json.dumps(name)}: {json.dumps(v)}" for name, v in out.items())
    target.write_text(f'{{"clip_s": {CLIP_S},\n "embeddings": {{\n{lines}\n }}\n}}\n')
    print(f"wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
