"""How far apart enrolment clips lie: the geometry behind enrolment's `voice_mismatch` check.

    .venv/bin/python benchmarks/enrolment_distances.py [--encoder campplus]

`POST /api/speakers` refuses clips that do not sound like one person, or like the person
already enrolled under the name, at the naming threshold (`speaker_name_threshold`). Each of
the five Asterisk voices' three enrolment clips (tests/speakers/data/enrolment) is fingerprinted
as the gateway does (the simulator's diarizer, the voice with the most clean speech) and this
prints, per encoder, the cosine distances the check compares: one person's clips against one
another and against the print of their other clips, and every clip against the prints of the
other people. The check works when the first stay under the threshold and the second over it.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "addon")]

from spark_gateway.speakers.voiceprints import combine, voice_distance  # noqa: E402
from tests.sim.diarization import diarize_samples  # noqa: E402
from tests.speakers.voices import enrolment_files, enrolment_samples  # noqa: E402

VOICES = ("ALLISON", "CARLO", "IRINA", "JUNE", "PAOLA")
THRESHOLDS = {"ge2e": 0.10, "campplus": 0.35}  # the naming thresholds tuned per encoder

type Print = tuple[np.ndarray, float]


def fingerprint(samples: np.ndarray, encoder: str) -> Print | None:
    """The print of the voice with the most clean speech, as `clip_fingerprint` takes it."""
    result = diarize_samples(samples.astype(np.float32) / 32768, encoder)
    voiced = [(label, v) for label, v in result.fingerprints.items() if v is not None]
    if not voiced:
        return None
    label, vector = max(voiced, key=lambda lv: result.clean_speech_s[lv[0]])
    return np.asarray(vector), result.clean_speech_s[label]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", choices=sorted(THRESHOLDS), default="ge2e")
    encoder = parser.parse_args().encoder
    clips: dict[str, list[Print]] = {}
    for name in VOICES:
        found = [fingerprint(enrolment_samples(path), encoder) for path in enrolment_files(name)]
        clips[name] = [p for p in found if p is not None]
        missing = len(found) - len(clips[name])
        print(f"{name}: clean speech per clip {[round(s, 1) for _, s in clips[name]]} s"
              + (f", {missing} clip(s) without a print" if missing else ""))  # fmt: skip
    same_pairs = [voice_distance(a, b) for prints in clips.values()
                  for (a, _), (b, _) in itertools.combinations(prints, 2)]  # fmt: skip
    same_rest = [
        voice_distance(vector, combine([p for j, p in enumerate(prints) if j != i])[0])
        for prints in clips.values() if len(prints) > 1
        for i, (vector, _) in enumerate(prints)
    ]  # fmt: skip
    enrolled = {name: combine(prints)[0] for name, prints in clips.items() if prints}
    other_pairs = [voice_distance(a, b) for n, m in itertools.combinations(VOICES, 2)
                   for a, _ in clips[n] for b, _ in clips[m]]  # fmt: skip
    other_prints = [voice_distance(vector, enrolled[m]) for n in VOICES for vector, _ in clips[n]
                    for m in enrolled if m != n]  # fmt: skip
    print(f"encoder {encoder}, naming threshold {THRESHOLDS[encoder]:.2f}")
    print(f"  one person, clip to clip:             {min(same_pairs):.3f}-{max(same_pairs):.3f}")
    print(f"  one person, clip to the others' print: {min(same_rest):.3f}-{max(same_rest):.3f}")
    print(f"  two people, clip to clip:             {min(other_pairs):.3f}-{max(other_pairs):.3f}")
    print(f"  clip to another person's print:       {min(other_prints):.3f}-"
          f"{max(other_prints):.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
