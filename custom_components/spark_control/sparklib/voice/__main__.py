"""Run the voice bridges on their own: `python -m custom_components.spark_control.sparklib.voice`.

--parakeet URL --magpie URL [--stt-port 10310] [--tts-port 10210] [--host 0.0.0.0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

import aiohttp

from .bridges import VoiceBridgeConfig, VoiceBridges


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Wyoming bridges to Parakeet and Magpie")
    parser.add_argument("--parakeet", required=True, help="Parakeet base URL")
    parser.add_argument("--magpie", required=True, help="Magpie base URL")
    parser.add_argument("--stt-port", type=int, default=10310)
    parser.add_argument("--tts-port", type=int, default=10210)
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on")
    parser.add_argument("--debug", action="store_true")
    return parser.parse_args()


async def _serve(args: argparse.Namespace) -> None:
    config = VoiceBridgeConfig(
        parakeet_url=args.parakeet,
        magpie_url=args.magpie,
        stt_port=args.stt_port,
        tts_port=args.tts_port,
        host=args.host,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with aiohttp.ClientSession() as session:
        bridges = VoiceBridges(session, config)
        await bridges.start()
        # One line each on stdout so scripts can pick the endpoints up; a wildcard listen
        # address is printed as loopback, which a local client can connect to.
        host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
        print(f"stt tcp://{host}:{bridges.stt.port}", flush=True)
        print(f"tts tcp://{host}:{bridges.tts.port}", flush=True)
        try:
            await stop.wait()
        finally:
            await bridges.async_stop()


def main() -> None:
    """Entry point of the standalone bridges."""
    args = _parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
