"""The Wyoming `Info` each bridge answers `Describe` with."""

from __future__ import annotations

from collections.abc import Iterable

from wyoming.info import (
    AsrModel,
    AsrProgram,
    Attribution,
    Info,
    TtsProgram,
    TtsVoice,
)

from .magpie import MAGPIE_MODEL, MagpieVoice
from .parakeet import PARAKEET_LANGUAGES, PARAKEET_MODEL

BRIDGE_VERSION = "0.1.0"
STT_PROGRAM_NAME = "spark-parakeet"
TTS_PROGRAM_NAME = "spark-magpie"
_NVIDIA = "NVIDIA"
_PARAKEET_URL = "https://huggingface.co/nvidia/parakeet-tdt-0.6b-v3"
_MAGPIE_URL = "https://build.nvidia.com/nvidia/magpie-tts-multilingual"
# The bridge programs are this project's; the models are NVIDIA's.
_PROJECT = Attribution(name="Spark Control", url="https://github.com/spark-control/spark-control")


def program_names(label: str = "") -> tuple[str, str]:
    """(STT, TTS) program names; with a cluster's name they tell clusters apart in HA's
    discovered Wyoming cards and entity names ("Lab Parakeet")."""
    # 40 bytes leave room for the rest of a 63-byte mDNS instance name.
    label = " ".join(label.split()).encode()[:40].decode(errors="ignore").strip()
    if not label:
        return STT_PROGRAM_NAME, TTS_PROGRAM_NAME
    return f"{label} Parakeet", f"{label} Magpie"


def stt_info(languages: Iterable[str] = PARAKEET_LANGUAGES, name: str = STT_PROGRAM_NAME) -> Info:
    """Describe the STT bridge: one ASR program with Parakeet as its model."""
    model = AsrModel(
        name=PARAKEET_MODEL,
        description="NVIDIA Parakeet TDT 0.6B v3",
        attribution=Attribution(name=_NVIDIA, url=_PARAKEET_URL),
        installed=True,
        version="v3",
        languages=list(languages),
    )
    program = AsrProgram(
        name=name,
        description="Parakeet speech-to-text on the Spark cluster",
        attribution=_PROJECT,
        installed=True,
        version=BRIDGE_VERSION,
        models=[model],
        supports_transcript_streaming=True,
    )
    return Info(asr=[program])


def tts_info(voices: Iterable[MagpieVoice], name: str = TTS_PROGRAM_NAME) -> Info:
    """Describe the TTS bridge: one streaming TTS program with Magpie's voices."""
    program = TtsProgram(
        name=name,
        description="Magpie text-to-speech on the Spark cluster",
        attribution=_PROJECT,
        installed=True,
        version=BRIDGE_VERSION,
        voices=[
            TtsVoice(
                name=voice.name,
                description=voice.description,
                attribution=Attribution(name=_NVIDIA, url=_MAGPIE_URL),
                installed=True,
                version=MAGPIE_MODEL,
                languages=[voice.language],
            )
            for voice in voices
        ],
        supports_synthesize_streaming=True,
    )
    return Info(tts=[program])
