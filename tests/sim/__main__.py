"""Run the simulated cluster as a process (used by ./scripts/demo).

    python -m tests.sim --nodes 2 --authorized-key-file K.pub --write-endpoints FILE \
        [--load-seconds S]

Starts everything, writes the endpoints JSON, runs until SIGINT/SIGTERM, then stops cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path

from tests.sim.cluster import SimCluster
from tests.sim.config import SimConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = SimConfig()
    parser = argparse.ArgumentParser(
        prog="python -m tests.sim", description="Run the simulated GPU cluster."
    )
    parser.add_argument("--nodes", type=int, default=2, help="number of simulated GPU nodes")
    parser.add_argument(
        "--authorized-key-file",
        type=Path,
        action="append",
        default=[],
        help="authorized_keys-style file whose keys may log in (repeatable)",
    )
    parser.add_argument("--write-endpoints", type=Path, help="where to write the endpoints JSON")
    parser.add_argument("--load-seconds", type=float, default=defaults.load_seconds)
    parser.add_argument("--token-rate", type=float, default=defaults.token_rate)
    parser.add_argument("--username", default=defaults.username)
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


def read_keys(paths: list[Path]) -> list[str]:
    keys: list[str] = []
    for path in paths:
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped and not stripped.startswith("#"):
                keys.append(stripped)
    return keys


async def serve(args: argparse.Namespace) -> None:
    config = SimConfig(
        nodes=args.nodes,
        authorized_keys=read_keys(args.authorized_key_file),
        username=args.username,
        load_seconds=args.load_seconds,
        token_rate=args.token_rate,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with SimCluster(config) as sim:
        endpoints = json.dumps(sim.endpoints(), indent=2)
        if args.write_endpoints is not None:
            # Write then rename, so a reader polling for the file never sees half of it.
            partial = args.write_endpoints.with_suffix(".partial")
            partial.write_text(endpoints + "\n")
            partial.replace(args.write_endpoints)
            logging.getLogger(__name__).info("endpoints written to %s", args.write_endpoints)
        else:
            print(endpoints, flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    try:
        asyncio.run(serve(args))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
