"""Write ge2e_reference.json: Resemblyzer's own embeddings of a few real voices.

tests/sim/ge2e.py runs Resemblyzer's GE2E encoder in numpy; this file pins what the package
itself answers, so a test can check our forward pass without PyTorch. Run it where PyTorch is,
for example the NeMo test env (Python 3.11, torch CPU), with the package unpacked beside it:

    pip download resemblyzer==0.1.4 --no-deps -d /tmp/rz && unzip /tmp/rz/*.whl -d /tmp/rz/pkg
    pip install --target /tmp/rz/pkg --no-deps webrtcvad-wheels   # imported by the package
    PYTHONPATH=/tmp/rz/pkg:. ~/.cache/spark-control/nemo-venv-*/bin/python \\
        tests/speakers/data/make_ge2e_reference.py

Each clip is the first CLIP_S of a voice, raised to -30 dBFS with the package's own function,
and embedded with `embed_utterance(rate=1.25)`: 1.6 s partials every 0.8 s, as ours are cut.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import soundfile
from resemblyzer import VoiceEncoder, normalize_volume

CLIP_S = 4.0
VOICES = ("ALLISON", "CARLO", "FEE083", "MEE009")
HERE = Path(__file__).parent


def main() -> None:
    encoder = VoiceEncoder("cpu", verbose=False)
    out = {}
    for name in VOICES:
        samples, rate = soundfile.read(HERE / "voices" / f"{name}.flac", dtype="int16")
        assert rate == 16_000
        clip = samples[: int(CLIP_S * rate)].astype(np.float32) / 32768
        wav = normalize_volume(clip, -30, increase_only=True)
        embedding = encoder.embed_utterance(wav, rate=1.25)
        out[name] = [round(float(v), 7) for v in embedding]
    target = HERE / "ge2e_reference.json"
    lines = ",\n".join(f"  {json.dumps(name)}: {json.dumps(v)}" for name, v in out.items())
    target.write_text(f'{{"clip_s": {CLIP_S},\n "embeddings": {{\n{lines}\n }}\n}}\n')
    print(f"wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
