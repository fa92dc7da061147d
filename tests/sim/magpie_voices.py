"""Magpie's voice catalogue and which flite voice stands in for each."""

from __future__ import annotations

from tests.sim.synthesizer import FliteVoice

LOCALES = ("en-US", "es-US", "fr-FR", "de-DE")
_PREFIX = "Magpie-Multilingual"

# Speaker -> flite stand-in. Female speakers share flite's one female voice at different pitches.
_SPEAKERS: dict[str, dict[str, FliteVoice]] = {
    "EN-US": {
        "Aria": FliteVoice("slt"),
        "Mia": FliteVoice("slt", pitch_hz=205.0),
        "Sofia": FliteVoice("slt", pitch_hz=150.0, stretch=1.1),
        "Jason": FliteVoice("rms"),
        "Leo": FliteVoice("awb"),
        "Ray": FliteVoice("kal16"),
    },
    "ES-US": {
        "Diego": FliteVoice("kal16", stretch=1.05),
        "Isabela": FliteVoice("slt", pitch_hz=190.0),
    },
    "FR-FR": {
        "Pascal": FliteVoice("awb", stretch=1.1),
        "Louise": FliteVoice("slt", pitch_hz=185.0),
    },
    "DE-DE": {"Jason": FliteVoice("rms", stretch=1.05), "Aria": FliteVoice("slt", stretch=1.05)},
}
_EMOTIONS = {"Calm": 1.15, "Happy": 0.9}  # duration_stretch per emotion variant


def voice_names() -> list[str]:
    names: list[str] = []
    for locale, speakers in _SPEAKERS.items():
        for speaker in speakers:
            names.append(f"{_PREFIX}.{locale}.{speaker}")
            if locale == "EN-US" and speaker in ("Aria", "Jason"):
                names.extend(f"{_PREFIX}.{locale}.{speaker}.{emotion}" for emotion in _EMOTIONS)
    return names


def default_voice(language: str) -> str:
    locale = language.upper()
    speaker = next(iter(_SPEAKERS.get(locale, _SPEAKERS["EN-US"])))
    return f"{_PREFIX}.{locale if locale in _SPEAKERS else 'EN-US'}.{speaker}"


def flite_voice(name: str) -> FliteVoice | None:
    """The stand-in for a full Magpie voice name, or None when Magpie has no such voice."""
    if name not in voice_names():
        return None
    parts = name.split(".")
    voice = _SPEAKERS[parts[1]][parts[2]]
    if len(parts) == 4:
        return FliteVoice(voice.name, voice.pitch_hz, _EMOTIONS[parts[3]])
    return voice
