"""Wyoming STT/TTS bridges to the cluster's Parakeet and Magpie servers (no Home Assistant here)."""

from __future__ import annotations

from .bridges import VoiceBridgeConfig, VoiceBridges
from .errors import SpeechServerFault, SpeechServiceError
from .magpie import MagpieClient, MagpieVoice, voice_language
from .parakeet import ParakeetClient
from .wav import PcmAudio, WavFormatError, parse_wav, pcm_to_wav

__all__ = [
    "MagpieClient",
    "MagpieVoice",
    "ParakeetClient",
    "PcmAudio",
    "SpeechServerFault",
    "SpeechServiceError",
    "VoiceBridgeConfig",
    "VoiceBridges",
    "WavFormatError",
    "parse_wav",
    "pcm_to_wav",
    "voice_language",
]
