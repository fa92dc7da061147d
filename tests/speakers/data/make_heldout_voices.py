"""Rebuild the held-out voices of `voices/` from Debian's Asterisk prompt packages.

    apt-get download asterisk-core-sounds-{en,fr,it,ru}-g722 asterisk-prompt-it-menardi-wav
    for d in *.deb; do dpkg-deb -x "$d" x; done
    .venv/bin/python tests/speakers/data/make_heldout_voices.py x/usr/share/asterisk/sounds

Each voice is one professional speaker reading IVR prompts (licences in ../README.md). The
prompts are decoded, trimmed of silence and joined until `SECONDS` of speech, then passed
through an 8 kHz telephone band (the Italian set exists only at 8 kHz): the voices then share
one channel, so a speaker model cannot tell them apart by bandwidth alone.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import av
import librosa
import numpy as np
import soundfile

RATE = 16_000
SECONDS = 40.0
VOICES = {  # our name: (folder, extension)
    "ALLISON": ("en_US_f_Allison", "g722"),
    "JUNE": ("fr_CA_f_June", "g722"),
    "CARLO": ("it_IT_m_Carlo", "g722"),
    "IRINA": ("ru_RU_f_IvrvoiceRU", "g722"),
    "PAOLA": ("it_IT_f_Menardi", "wav"),
}
HERE = Path(__file__).parent / "voices"


def decode(path: Path) -> np.ndarray:
    """Float samples at 16 kHz (PyAV reads raw G.722 and WAV alike)."""
    options = {"format": "g722"} if path.suffix == ".g722" else {}
    with av.open(str(path), **options) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        parts = [
            out.to_ndarray().reshape(-1)
            for frame in container.decode(audio=0)
            for out in resampler.resample(frame)
        ]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def trimmed(samples: np.ndarray) -> np.ndarray:
    start, end = librosa.effects.trim(samples, top_db=35)[1]
    return samples[start:end]


def build(folder: Path, extension: str) -> tuple[np.ndarray, list[list[float]]]:
    pieces, clips, total = [], [], 0
    for path in sorted(folder.glob(f"*.{extension}")):
        speech = trimmed(decode(path))
        if len(speech) < 0.8 * RATE:  # single words say little about a voice
            continue
        clips.append([round(total / RATE, 3), round((total + len(speech)) / RATE, 3)])
        pieces.append(speech)
        total += len(speech)
        if total >= SECONDS * RATE:
            break
    voice = np.concatenate(pieces)
    phone = librosa.resample(voice, orig_sr=RATE, target_sr=8000)
    voice = librosa.resample(phone, orig_sr=8000, target_sr=RATE)
    return (voice / np.max(np.abs(voice)) * 0.9).astype(np.float32), clips


def main(sounds: Path) -> None:
    manifest_path = HERE / "clips.json"
    manifest = json.loads(manifest_path.read_text())
    for name, (folder, extension) in VOICES.items():
        voice, clips = build(sounds / folder, extension)
        soundfile.write(HERE / f"{name}.flac", voice, RATE, subtype="PCM_16")
        manifest[name] = {"seconds": round(len(voice) / RATE, 2), "clips": clips}
        print(name, manifest[name]["seconds"], "s from", len(clips), "prompts")
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
