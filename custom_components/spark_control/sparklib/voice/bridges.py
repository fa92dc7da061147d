"""Both voice bridges, started and stopped together; the one object the HA glue holds."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from functools import partial

import aiohttp

from .errors import SpeechServiceError
from .info import program_names, stt_info
from .magpie import MagpieClient
from .parakeet import ParakeetClient
from .server import WyomingBridgeServer
from .stt_handler import SttBridge, SttEventHandler, UtteranceCallback, WedgeCallback
from .tts_handler import TtsBridge, TtsEventHandler
from .voices import BridgeVoiceCatalog

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class VoiceBridgeConfig:
    """Where the speech servers are and where the bridges listen."""

    parakeet_url: str
    magpie_url: str
    stt_port: int
    tts_port: int
    host: str = "0.0.0.0"
    request_timeout: float = 60.0
    # How long start() waits for Magpie's voice list before opening the ports without it.
    voice_list_wait: float = 5.0
    # The cluster's name, put in the programs' names ("Lab Parakeet"); empty: the plain names.
    label: str = ""


class VoiceBridges:
    """A Wyoming STT server for Parakeet and a Wyoming TTS server for Magpie."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        config: VoiceBridgeConfig,
        *,
        on_wedge: WedgeCallback | None = None,
        on_utterance: UtteranceCallback | None = None,
    ) -> None:
        parakeet = ParakeetClient(session, config.parakeet_url, timeout=config.request_timeout)
        magpie = MagpieClient(session, config.magpie_url, timeout=config.request_timeout)
        stt_name, tts_name = program_names(config.label)
        self.voices = BridgeVoiceCatalog(magpie, program_name=tts_name)
        self._voice_list_wait = config.voice_list_wait
        self.stt_bridge = SttBridge(
            parakeet=parakeet,
            on_wedge=on_wedge,
            on_utterance=on_utterance,
            info=stt_info(name=stt_name),
        )
        self.tts_bridge = TtsBridge(magpie=magpie, voices=self.voices)
        self.stt = WyomingBridgeServer(
            config.host, config.stt_port, partial(SttEventHandler, self.stt_bridge)
        )
        self.tts = WyomingBridgeServer(
            config.host, config.tts_port, partial(TtsEventHandler, self.tts_bridge)
        )

    async def start(self) -> None:
        """Read Magpie's voices (best effort) and open both ports."""
        try:
            async with asyncio.timeout(self._voice_list_wait):
                await self.voices.refresh()
        except (SpeechServiceError, TimeoutError) as err:
            # Magpie may still be loading; the voice list is read again at the next Describe.
            _LOGGER.warning("Magpie's voices are not available yet: %r", err)
        await self.stt.start()
        try:
            await self.tts.start()
        except BaseException:
            await self.stt.stop()
            raise

    async def async_stop(self) -> None:
        """Close both ports and every open connection."""
        await self.stt.stop()
        await self.tts.stop()
        await self.voices.close()
