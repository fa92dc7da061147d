"""Wyoming TTS bridge: text, plain or streamed, spoken by Magpie sentence by sentence."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from wyoming.audio import AudioChunk, AudioChunkConverter, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
)

from .errors import SpeechServiceError
from .magpie import DEFAULT_SAMPLE_RATE, MagpieClient, MagpieVoice
from .server import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, Connections, TrackedEventHandler
from .text_split import SpeechTextSplitter, split_long_sentence, split_text
from .voices import BridgeVoiceCatalog, UnknownVoiceError
from .wav import PcmAudio

_LOGGER = logging.getLogger(__name__)
# Pieces shorter than this are not halved again after Magpie refuses them.
_MIN_RETRY_CHARS = 40


@dataclass
class TtsBridge:
    """What every TTS connection shares."""

    magpie: MagpieClient
    voices: BridgeVoiceCatalog
    sample_rate: int = DEFAULT_SAMPLE_RATE
    samples_per_chunk: int = 1024
    # Sentences synthesized at once after the first; keeps Magpie ahead without flooding it.
    max_parallel: int = 2
    # Longest reply accepted (a few minutes of speech); more is refused, not queued.
    max_text_chars: int = 20_000
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS


class _SpokenReply:
    """Synthesizes pieces as they arrive and writes their audio in order, in one format.

    With `frame_each_piece` every piece gets its own audio-start/stop (streaming, like Piper);
    otherwise the whole reply is one audio-start ... audio-stop (what a plain `synthesize`
    client reads until).
    """

    def __init__(
        self,
        handler: TtsEventHandler,
        bridge: TtsBridge,
        voice: MagpieVoice,
        *,
        frame_each_piece: bool,
    ) -> None:
        self._handler = handler
        self._bridge = bridge
        self._voice = voice
        self._frame_each_piece = frame_each_piece
        self._limit = asyncio.Semaphore(bridge.max_parallel)
        self._pending: asyncio.Queue[asyncio.Task[PcmAudio] | None] = asyncio.Queue()
        self._syntheses: set[asyncio.Task[PcmAudio]] = set()
        self._first_piece: asyncio.Task[PcmAudio] | None = None
        self._writer = asyncio.create_task(self._write_in_order(), name="wyoming tts writer")
        self.error: SpeechServiceError | None = None
        # Plain replies run whole chunks across sentence joins; this is the unsent tail.
        self._carry = b""

    def add(self, pieces: list[str]) -> None:
        """Start synthesizing each piece at once; audio is written in the order given."""
        for piece in pieces:
            if self._first_piece is None:
                self._first_piece = asyncio.create_task(
                    self._synthesize(piece), name="magpie synthesis"
                )
                task = self._first_piece
            else:
                task = asyncio.create_task(self._synthesize_later(piece), name="magpie synthesis")
            self._syntheses.add(task)
            task.add_done_callback(self._syntheses.discard)
            self._pending.put_nowait(task)

    async def finish(self) -> SpeechServiceError | None:
        """Wait until every piece is written; return the error that ended the reply, if any."""
        self._pending.put_nowait(None)
        await self._writer
        return self.error

    async def cancel(self) -> None:
        """Abandon the reply (client gone or replaced)."""
        tasks = [self._writer, *self._syntheses]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _synthesize_later(self, text: str) -> PcmAudio:
        # The first sentence runs alone: time to first audio is what the listener notices.
        assert self._first_piece is not None
        await asyncio.wait([self._first_piece])
        return await self._synthesize(text)

    async def _synthesize(self, text: str, *, may_split: bool = True) -> PcmAudio:
        async with self._limit:
            try:
                return await self._bridge.magpie.synthesize(
                    text, self._voice, self._bridge.sample_rate
                )
            except SpeechServiceError as err:
                # A slow voice can still pass Magpie's 20 s cap: halve the piece, retry once.
                if not may_split or err.status != 400 or len(text) < _MIN_RETRY_CHARS:
                    raise
        halves = split_long_sentence(text, len(text) // 2 + 1)
        audios = [await self._synthesize(half, may_split=False) for half in halves]
        first = audios[0]
        return PcmAudio(first.rate, first.width, first.channels, b"".join(a.pcm for a in audios))

    async def _write_in_order(self) -> None:
        converter: AudioChunkConverter | None = None
        opened = False
        while (task := await self._pending.get()) is not None:
            if self.error is not None:
                task.cancel()
                continue
            try:
                audio = await task
            except SpeechServiceError as err:
                self.error = err
                continue
            events: list[Event] = []
            if converter is None:
                # The first piece fixes the reply's format; HA builds one WAV header from it.
                converter = AudioChunkConverter(audio.rate, audio.width, audio.channels)
            if self._frame_each_piece or not opened:
                events.append(_start_of(audio, converter))
                opened = True
            events += self._chunks(audio, converter, flush=self._frame_each_piece)
            if self._frame_each_piece:
                events.append(AudioStop().event())
                opened = False
            # One write per piece: a sentence's audio leaves in one go, not chunk by chunk.
            await self._handler.write_events(events)
        if self._frame_each_piece or self.error is not None:
            return
        events = []
        if not opened:
            # Nothing to say still ends with audio-stop: a plain client reads until it.
            rate = self._bridge.sample_rate
            events.append(AudioStart(rate=rate, width=2, channels=1).event())
        elif self._carry and converter is not None:
            silence = PcmAudio(
                converter.rate or 1, converter.width or 2, converter.channels or 1, b""
            )
            events += self._chunks(silence, converter, flush=True)
        events.append(AudioStop().event())
        await self._handler.write_events(events)

    def _chunks(
        self, audio: PcmAudio, converter: AudioChunkConverter, *, flush: bool
    ) -> list[Event]:
        """Whole chunks of `samples_per_chunk`; the remainder is kept unless flushing."""
        chunk = converter.convert(AudioChunk(audio.rate, audio.width, audio.channels, audio.pcm))
        pcm = self._carry + chunk.audio
        step = self._bridge.samples_per_chunk * chunk.width * chunk.channels
        end = len(pcm) if flush else len(pcm) - len(pcm) % step
        self._carry = pcm[end:]
        return [
            AudioChunk(
                rate=chunk.rate,
                width=chunk.width,
                channels=chunk.channels,
                audio=pcm[start : min(start + step, end)],
            ).event()
            for start in range(0, end, step)
        ]


def _start_of(audio: PcmAudio, converter: AudioChunkConverter) -> Event:
    return AudioStart(
        rate=converter.rate or audio.rate,
        width=converter.width or audio.width,
        channels=converter.channels or audio.channels,
    ).event()


class TtsEventHandler(TrackedEventHandler):
    """One client connection of the TTS bridge."""

    def __init__(
        self,
        bridge: TtsBridge,
        connections: Connections,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        super().__init__(connections, reader, writer)
        self._bridge = bridge
        self.idle_timeout = bridge.idle_timeout
        self.max_connections = bridge.max_connections
        self._stream: _SpokenReply | None = None
        self._splitter: SpeechTextSplitter | None = None
        self._stream_chars = 0

    async def handle_event(self, event: Event) -> bool:
        """Dispatch one event; malformed ones get an `Error`, unknown ones are ignored."""
        try:
            return await self._dispatch(event)
        except UnknownVoiceError as err:
            await self._end_stream()
            await self.write_event(Error(text=str(err), code="unknown-voice").event())
            return True
        except SpeechServiceError as err:
            await self._end_stream()
            return await self._fail(err)
        except (KeyError, TypeError, ValueError) as err:
            _LOGGER.debug("Malformed %s event: %r", event.type, err)
            await self.write_event(
                Error(text=f"malformed {event.type} event: {err!r}", code="malformed").event()
            )
            return True

    async def disconnect(self) -> None:
        """Stop any synthesis still running for this connection."""
        await self._end_stream()

    async def _dispatch(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event((await self._bridge.voices.info()).event())
            return True
        if SynthesizeStart.is_type(event.type):
            await self._end_stream()
            try:
                voice = await self._voice_for(event.data)
            except UnknownVoiceError as err:
                # The text chunks that follow have nowhere to go: refuse the whole stream.
                await self.write_event(Error(text=str(err), code="unknown-voice").event())
                return False
            self._splitter = SpeechTextSplitter()
            self._stream_chars = 0
            self._stream = _SpokenReply(self, self._bridge, voice, frame_each_piece=True)
            return True
        if SynthesizeChunk.is_type(event.type):
            text = SynthesizeChunk.from_event(event).text
            if self._stream is None or self._splitter is None:
                raise ValueError("synthesize-chunk outside a synthesize-start/stop stream")
            if self._stream.error is not None:
                return await self._fail(self._stream.error)
            self._stream_chars += len(text)
            if self._stream_chars > self._bridge.max_text_chars:
                await self._end_stream()
                await self.write_event(self._too_long_error())
                return False
            self._stream.add(self._splitter.add(text))
            return True
        if SynthesizeStop.is_type(event.type):
            return await self._stop_stream()
        if Synthesize.is_type(event.type):
            if self._stream is not None:
                # The compatibility copy of the text a streaming client sends; already spoken.
                return True
            return await self._synthesize_plain(event)
        _LOGGER.debug("Ignoring %s event", event.type)
        return True

    async def _stop_stream(self) -> bool:
        stream, splitter = self._stream, self._splitter
        self._stream = self._splitter = None
        if stream is not None and splitter is not None:
            stream.add(splitter.finish())
            try:
                error = await stream.finish()
            except asyncio.CancelledError:
                await stream.cancel()
                raise
            if error is not None:
                return await self._fail(error)
        await self.write_event(SynthesizeStopped().event())
        return True

    async def _synthesize_plain(self, event: Event) -> bool:
        text = Synthesize.from_event(event).text
        if not isinstance(text, str):
            raise TypeError("text must be a string")
        if len(text) > self._bridge.max_text_chars:
            await self.write_event(self._too_long_error())
            return True
        voice = await self._voice_for(event.data)
        reply = _SpokenReply(self, self._bridge, voice, frame_each_piece=False)
        reply.add(split_text(text))
        try:
            error = await reply.finish()
        except asyncio.CancelledError:
            await reply.cancel()
            raise
        if error is not None:
            return await self._fail(error)
        return True

    def _too_long_error(self) -> Event:
        limit = self._bridge.max_text_chars
        return Error(text=f"text longer than {limit} characters", code="text-too-long").event()

    async def _voice_for(self, data: dict[str, Any]) -> MagpieVoice:
        # Read the raw event: wyoming 1.7 folds a language-only voice into its name.
        voice = data.get("voice") or {}
        if not isinstance(voice, dict):
            raise TypeError("voice must be an object")
        return await self._bridge.voices.choose(voice.get("name"), voice.get("language"))

    async def _fail(self, err: SpeechServiceError) -> bool:
        """Tell the client and close: a half-spoken reply cannot be continued."""
        _LOGGER.warning("Synthesis failed: %s", err)
        await self._end_stream()
        await self.write_event(Error(text=str(err), code="upstream-error").event())
        return False

    async def _end_stream(self) -> None:
        stream, self._stream, self._splitter = self._stream, None, None
        if stream is not None:
            with contextlib.suppress(Exception):
                await stream.cancel()
