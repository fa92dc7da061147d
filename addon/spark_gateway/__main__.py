"""`python -m spark_gateway --config FILE`: run the gateway (standalone or under Supervisor)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from aiohttp import web

from .app import create_app
from .appkeys import API_KEYS, CONFIG, SESSION
from .config import ConfigError, load_config, supervisor_token
from .discovery import announce, gateway_url
from .heap import keep_large_buffers_out_of_the_heap
from .server_log import quiet_unparsable_requests
from .unparsable import GatewayRunner


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, load the config and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="spark_gateway", description=__doc__)
    parser.add_argument("--config", required=True, help="YAML or JSON options file")
    parser.add_argument("--host", help="override the listen address")
    parser.add_argument("--port", type=int, help="override the listen port (0 picks a free one)")
    parser.add_argument(
        "--announce",
        action="store_true",
        help="announce the gateway to Home Assistant via Supervisor discovery",
    )
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as err:
        print(f"spark_gateway: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    quiet_unparsable_requests()
    keep_large_buffers_out_of_the_heap()
    app = create_app(config)
    if args.announce:
        app.on_startup.append(_announce)
    access_log = logging.getLogger("spark_gateway.access")
    asyncio.run(
        _serve(
            app,
            host=args.host or config.host,
            port=config.port if args.port is None else args.port,
            access_log=access_log if config.log_level == "debug" else None,
        )
    )
    return 0


async def _serve(
    app: web.Application, *, host: str, port: int, access_log: logging.Logger | None
) -> None:
    """What `web.run_app` does, with the runner that answers unparsable requests in JSON:
    start the app, listen until SIGTERM or Ctrl-C, then close connections and clean up."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner = GatewayRunner(
        app,
        handler_cancellation=True,  # a client that disconnects cancels its upstream call
        access_log=access_log,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        logging.getLogger("spark_gateway").info("Running on %s", site.name)
        await stop.wait()
    finally:
        await runner.cleanup()


async def _announce(app: web.Application) -> None:
    token = supervisor_token()
    if token is None:
        logging.getLogger(__name__).warning("--announce given but SUPERVISOR_TOKEN is not set")
        return
    config = app[CONFIG]
    keys = app[API_KEYS]
    await announce(
        app[SESSION], token=token, url=gateway_url(config), api_key=keys[0] if keys else None
    )


if __name__ == "__main__":
    sys.exit(main())
