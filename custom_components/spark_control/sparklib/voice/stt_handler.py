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
from .parakeet import ParakeetClient, UploadFraming
from .server import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, Connections, TrackedEventHandler
from .wav import GrowingWav

_LOGGER = logging.getLogger(__name__)

# Parakeet is fed what it was trained on: 16 kHz, 16-bit, mono.
PARAKEET_RATE = 16000
PARAKEET_WIDTH = 2
PARAKEET_CHANNELS = 1
_PARAKEET_FORMAT = (PARAKEET_RATE, PARAKEET_WIDTH, PARAKEET_CHANNELS)
# What a client may declare. Anything else is refused before a byte is converted: `rate: 1`
# would resample 32 KB into 1 GB, `rate: 2**40` overflows the resampler.
MIN_RATE, MAX_RATE = 4000, 384000
WIDTHS = (1, 2, 3, 4)
CHANNELS = (1, 2)
# Chunks whose converted size passes this are resampled in a worker thread, not on the loop.
_CONVERT_IN_THREAD_BYTES = 32 * 1024

WedgeCallback = Callable[[str], None]
# Called with the utterance (16 kHz mono WAV) and its transcript after each transcription.
UtteranceCallback = Callable[[bytes, str], None]


@dataclass
class SttBridge:
    """What every STT connection shares."""

    parakeet: ParakeetClient
    # Called with a short error text when Parakeet answers 500 (a likely wedge).
    on_wedge: WedgeCallback | None = None
    # Who-spoke hook: must return at once (schedule work elsewhere), it is not awaited.
    on_utterance: UtteranceCallback | None = None
    # Upload cap: an utterance longer than this is refused instead of buffered.
    max_audio_seconds: float = 300.0
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
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
        self.max_connections = bridge.max_connections
        self._language: str | None = None
        # The upload to Parakeet, built while the audio streams in (created at its first chunk).
        self._framing: UploadFraming | None = None
        self._upload: GrowingWav | None = None
        self._converter = _new_converter()
        self._too_long = False
        self._partial_frame = b""
        self._max_bytes = int(bridge.max_audio_seconds * PARAKEET_RATE * PARAKEET_WIDTH)

    async def handle_event(self, event: Event) -> bool:
        """Dispatch one event; malformed ones get an `Error`, unknown ones are ignored."""
        try:
            return await self._dispatch(event)
        except (KeyError, TypeError, ValueError, ArithmeticError) as err:
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
            self._framing = None  # it names the language
            self._reset_audio()
        elif AudioStart.is_type(event.type):
            start = AudioStart.from_event(event)
            _check_format(start.rate, start.width, start.channels)
            self._reset_audio()
        elif AudioChunk.is_type(event.type):
            await self._add_chunk(AudioChunk.from_event(event))
        elif AudioStop.is_type(event.type):
            return await self._transcribe()
        else:
            # Newer protocol events (select-program, ...) and foreign ones: not ours, stay open.
            _LOGGER.debug("Ignoring %s event", event.type)
        return True

    def _reset_audio(self) -> None:
        # A new buffer, never a cleared one: the last one may still be on its way to Parakeet.
        self._upload = None
        self._partial_frame = b""
        self._converter = _new_converter()
        self._too_long = False

    async def _add_chunk(self, chunk: AudioChunk) -> None:
        _check_format(chunk.rate, chunk.width, chunk.channels)
        if self._too_long:
            return
        upload = self._upload or await self._start_upload()
        # Clients may cut chunks mid-frame; convert whole frames and keep the rest for later.
        frame = chunk.width * chunk.channels
        data = chunk.audio or b""
        if self._partial_frame or len(data) % frame:
            data = self._partial_frame + data
            whole = len(data) - len(data) % frame
            self._partial_frame = data[whole:]
            data = data[:whole]
        # The length is checked on what the audio will become, before converting it.
        converted_size = len(data) // frame * PARAKEET_RATE // chunk.rate * PARAKEET_WIDTH
        if upload.pcm_size + converted_size > self._max_bytes:
            self._too_long = True
            self._upload = None  # nothing more will be sent: free the buffer now
            return
        if (chunk.rate, chunk.width, chunk.channels) != _PARAKEET_FORMAT:
            source = AudioChunk(chunk.rate, chunk.width, chunk.channels, data)
            if converted_size > _CONVERT_IN_THREAD_BYTES:
                data = (await asyncio.to_thread(self._converter.convert, source)).audio
            else:
                data = self._converter.convert(source).audio
        upload.append(data)

    async def _start_upload(self) -> GrowingWav:
        if self._framing is None:
            self._framing = await self._bridge.parakeet.upload_framing(self._language)
        self._upload = GrowingWav(
            PARAKEET_RATE, PARAKEET_WIDTH, PARAKEET_CHANNELS, preamble=self._framing.head
        )
        return self._upload

    async def _transcribe(self) -> bool:
        language = self._language
        upload, framing, too_long = self._upload, self._framing, self._too_long
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
        if upload is not None and framing is not None and upload.pcm_size:
            body = upload.finish(framing.tail)
            try:
                text = await self._bridge.parakeet.transcribe_upload(body, framing.content_type)
            except SpeechServiceError as err:
                await self._report_failure(err)
                # Close: clients that predate `error` events (HA before 2026.8) wait for a
                # transcript forever otherwise; a closed connection fails them at once.
                return False
        if text and upload is not None and self._bridge.on_utterance is not None:
            self._bridge.on_utterance(upload.finished_wav(), text)
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


def _check_format(rate: int, width: int, channels: int) -> None:
    """Refuse audio formats no microphone produces (an `error` event via handle_event)."""
    for name, value in (("rate", rate), ("width", width), ("channels", channels)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"audio {name} must be an integer, not {value!r}"[:200])
    if not MIN_RATE <= rate <= MAX_RATE or width not in WIDTHS or channels not in CHANNELS:
        raise ValueError(
            f"unsupported audio format {rate} Hz, {width} bytes, {channels} channels "
            f"(accepted: {MIN_RATE}-{MAX_RATE} Hz, {WIDTHS} bytes, {CHANNELS} channels)"
        )


def _new_converter() -> AudioChunkConverter:
    return AudioChunkConverter(rate=PARAKEET_RATE, width=PARAKEET_WIDTH, channels=PARAKEET_CHANNELS)
