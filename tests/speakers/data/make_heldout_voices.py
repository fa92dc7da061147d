"""Rebuild the held-out voices of `voices/` and their enrolment clips from Debian's Asterisk
prompt packages.

    apt-get download asterisk-core-sounds-{en,fr,it,ru}-g722 asterisk-prompt-it-menardi-wav
    for d in *.deb; do dpkg-deb -x "$d" x; done
    .venv/bin/python tests/speakers/data/make_heldout_voices.py x/usr/share/asterisk/sounds

Each voice is one professional speaker reading IVR prompts (licences in ../README.md). The
prompts are decoded, trimmed of silence and joined until `SECONDS` of speech, then passed
through an 8 kHz telephone band (the Italian set exists only at 8 kHz): the voices then share
one channel, so a speaker model cannot tell them apart by bandwidth alone.

The enrolment clips (`enrolment/<NAME>-<k>.flac`, 8 kHz) are other prompts of the same
speaker: taken from the second half of the package's sorted prompt list, far from the first
prompts the conversations' material came from, and checked sample by sample against every
prompt of that material, so no enrolment audio is ever heard in a conversation. Each clip
joins prompts with short pauses, as a person recording themselves would pause.
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
ENROLMENT = Path(__file__).parent / "enrolment"
ENROL_CLIPS = 3
ENROL_CLIP_S = 7.0  # speech per clip (7-10 s): 20-30 s per person, as a user would record
ENROL_PROMPT_S = (1.5, 5.0)  # seconds of one prompt
ENROL_PAUSE_S = 0.3


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


def telephone(samples: np.ndarray) -> np.ndarray:
    """The 8 kHz band every Asterisk voice goes through, peak-normalised, still at 16 kHz."""
    phone = librosa.resample(samples, orig_sr=RATE, target_sr=8000)
    voice = librosa.resample(phone, orig_sr=8000, target_sr=RATE)
    return (voice / np.max(np.abs(voice)) * 0.9).astype(np.float32)


def build(folder: Path, extension: str) -> tuple[np.ndarray, list[list[float]], list[Path]]:
    pieces, clips, used, total = [], [], [], 0
    for path in sorted(folder.glob(f"*.{extension}")):
        speech = trimmed(decode(path))
        if len(speech) < 0.8 * RATE:  # single words say little about a voice
            continue
        clips.append([round(total / RATE, 3), round((total + len(speech)) / RATE, 3)])
        pieces.append(speech)
        used.append(path)
        total += len(speech)
        if total >= SECONDS * RATE:
            break
    return telephone(np.concatenate(pieces)), clips, used


def enrolment_clips(folder: Path, extension: str, used: list[Path]) -> list[np.ndarray]:
    """`ENROL_CLIPS` clips of other prompts of the voice (8 kHz), none heard in `used`."""
    heard = [trimmed(decode(path)) for path in used]
    prompts = sorted(folder.glob(f"*.{extension}"))
    clips: list[np.ndarray] = []
    pieces: list[np.ndarray] = []
    pause = np.zeros(int(ENROL_PAUSE_S * RATE), np.float32)
    for path in prompts[len(prompts) // 2 :]:
        speech = trimmed(decode(path))
        # Whole sentences, none so long that it fills a clip, and never a prompt heard before.
        sized = ENROL_PROMPT_S[0] * RATE <= len(speech) <= ENROL_PROMPT_S[1] * RATE
        if not sized or any(len(h) == len(speech) and np.allclose(h, speech) for h in heard):
            continue
        pieces.append(speech)
        if sum(len(p) for p in pieces) >= ENROL_CLIP_S * RATE:
            joined = np.concatenate([x for p in pieces for x in (p, pause)][:-1])
            clips.append(librosa.resample(telephone(joined), orig_sr=RATE, target_sr=8000))
            pieces = []
            if len(clips) == ENROL_CLIPS:
                return clips
    raise SystemExit(f"{folder.name}: not enough prompts for {ENROL_CLIPS} enrolment clips")


def main(sounds: Path) -> None:
    manifest_path = HERE / "clips.json"
    manifest = json.loads(manifest_path.read_text())
    ENROLMENT.mkdir(exist_ok=True)
    for name, (folder, extension) in VOICES.items():
        voice, clips, used = build(sounds / folder, extension)
        soundfile.write(HERE / f"{name}.flac", voice, RATE, subtype="PCM_16")
        manifest[name] = {"seconds": round(len(voice) / RATE, 2), "clips": clips}
        print(name, manifest[name]["seconds"], "s from", len(clips), "prompts")
        for k, clip in enumerate(enrolment_clips(sounds / folder, extension, used), 1):
            soundfile.write(ENROLMENT / f"{name}-{k}.flac", clip, 8000, subtype="PCM_16")
            print(f"  enrolment clip {k}: {len(clip) / 8000:.1f} s")
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
