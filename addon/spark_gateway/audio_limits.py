"""The bounds on audio a client may send, shared by the header check and the decoder."""

from __future__ import annotations

from typing import Final

# Below 4 kHz nothing is speech any codec records; above 384 kHz no recorder writes. A WAV
# declared at 1 Hz turns 28 KB into four hours of audio, so the rate is checked first.
MIN_SAMPLE_RATE: Final = 4000
MAX_SAMPLE_RATE: Final = 384000
MAX_CHANNELS: Final = 16
# A recording holds one audio stream, a video a few more; thousands of declared streams only
# make FFmpeg probe each of them.
MAX_STREAMS: Final = 8
