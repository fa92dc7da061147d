"""Wyoming STT bridge: audio from any client in any format, transcribed by Parakeet."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioChunkConverter, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info

from .errors import SpeechServerFault, SpeechServiceError
from .info import stt_info
from .parakeet import ParakeetClient
from .server import DEFAULT_IDLE_TIMEOUT, Connections, TrackedEventHandler
from .wav import PcmAudio, pcm_to_wav

_LOGGER = logging.getLogger(__name__)

# Parakeet is fed what it was trained on: 16 kHz, 16-bit, mono.
PARAKEET_RATE = 16000
PARAKEET_WIDTH = 2
PARAKEET_CHANNELS = 1

WedgeCallback = Callable[[str], None]


@dataclass
class SttBridge:
    """What every STT connection shares."""

    parakeet: ParakeetClient
    # Called with a short error text when Parakeet answers 500 (a likely wedge).
    on_wedge: WedgeCallback | None = None
    # Upload cap: an utterance longer than this is refused instead of buffered.
    max_audio_seconds: float = 300.0
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    info: Info = field(default_factory=stt_info)


class SttEventHandler(TrackedEventHandler):
    """One client connection of the STT bridge."""

    def __init__(
        self,
        bridge: SttBridge,
        connections: Connections,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        super().__init__(connections, reader, writer)
        self._bridge = bridge
        self.idle_timeout = bridge.idle_timeout
        self._language: str | None = None
        self._audio = bytearray()
        self._converter = _new_converter()
        self._too_long = False
        self._partial_frame = b""
        self._max_bytes = int(bridge.max_audio_seconds * PARAKEET_RATE * PARAKEET_WIDTH)

    async def handle_event(self, event: Event) -> bool:
        """Dispatch one event; malformed ones get an `Error`, unknown ones are ignored."""
        try:
            return await self._dispatch(event)
        except (KeyError, TypeError, ValueError) as err:
            _LOGGER.debug("Malformed %s event: %r", event.type, err)
            await self.write_event(
                Error(text=f"malformed {event.type} event: {err!r}", code="malformed").event()
            )
            return True

    async def _dispatch(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event(self._bridge.info.event())
        elif Transcribe.is_type(event.type):
            self._language = Transcribe.from_event(event).language or None
            self._reset_audio()
        elif AudioStart.is_type(event.type):
            AudioStart.from_event(event)  # validates the declared format
            self._reset_audio()
        elif AudioChunk.is_type(event.type):
            self._add_chunk(AudioChunk.from_event(event))
        elif AudioStop.is_type(event.type):
            return await self._transcribe()
        else:
            # Newer protocol events (select-program, ...) and foreign ones: not ours, stay open.
            _LOGGER.debug("Ignoring %s event", event.type)
        return True

    def _reset_audio(self) -> None:
        self._audio.clear()
        self._partial_frame = b""
        self._converter = _new_converter()
        self._too_long = False

    def _add_chunk(self, chunk: AudioChunk) -> None:
        if chunk.channels not in (1, 2) or chunk.width not in (1, 2, 3, 4) or chunk.rate <= 0:
            raise ValueError(
                f"unsupported audio format {chunk.rate} Hz, {chunk.width} bytes, "
                f"{chunk.channels} channels"
            )
        if self._too_long:
            return
        # Clients may cut chunks mid-frame; convert whole frames and keep the rest for later.
        frame = chunk.width * chunk.channels
        data = self._partial_frame + chunk.audio
        whole = len(data) - len(data) % frame
        self._partial_frame = data[whole:]
        chunk = AudioChunk(chunk.rate, chunk.width, chunk.channels, data[:whole])
        converted = self._converter.convert(chunk)
        if len(self._audio) + len(converted.audio) > self._max_bytes:
            self._too_long = True
            return
        self._audio.extend(converted.audio)

    async def _transcribe(self) -> bool:
        language = self._language
        pcm, too_long = bytes(self._audio), self._too_long
        self._reset_audio()
        if too_long:
            await self.write_event(
                Error(
                    text=f"audio longer than {self._bridge.max_audio_seconds:g} s",
                    code="audio-too-long",
                ).event()
            )
            return False  # like an upstream failure: end the request for every client version
        text = ""
        if pcm:
            wav = pcm_to_wav(PcmAudio(PARAKEET_RATE, PARAKEET_WIDTH, PARAKEET_CHANNELS, pcm))
            try:
                text = await self._bridge.parakeet.transcribe(wav, language)
            except SpeechServiceError as err:
                await self._report_failure(err)
                # Close: clients that predate `error` events (HA before 2026.8) wait for a
                # transcript forever otherwise; a closed connection fails them at once.
                return False
        chunks = [TranscriptChunk(text=text).event()] if text else []
        await self.write_events(
            [
                TranscriptStart(language=language).event(),
                *chunks,
                Transcript(text=text, language=language).event(),
                TranscriptStop().event(),
            ]
        )
        return True

    async def _report_failure(self, err: SpeechServiceError) -> None:
        _LOGGER.warning("Transcription failed: %s", err)
        # A 500 is how a wedged CUDA context shows; 502/503 mean down or loading, not wedged.
        if err.status == 500 and self._bridge.on_wedge is not None:
            self._bridge.on_wedge(err.message)
        code = "upstream-fault" if isinstance(err, SpeechServerFault) else "upstream-error"
        await self.write_event(Error(text=str(err), code=code).event())


def _new_converter() -> AudioChunkConverter:
    return AudioChunkConverter(rate=PARAKEET_RATE, width=PARAKEET_WIDTH, channels=PARAKEET_CHANNELS)
