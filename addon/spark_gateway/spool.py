"""Scratch files for uploads and decoded audio, removed when the request that made them ends.

Audio is kept on disk rather than in the gateway's memory: an upload may be 200 MB and its
decoded form (16 kHz mono s16) 460 MB for four hours, so memory would grow with the client's
input. On disk it costs one 64 KiB buffer at a time.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO, Final

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

_COPY_BUFFER: Final = 64 * 1024
_FILES: Final = "spark_gateway.spooled_files"  # request-scoped list of Paths
_AT_END: Final = "spark_gateway.spool_at_end"  # request-scoped callbacks


class Spool:
    """A private directory of per-request scratch files."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def new_file(self, request: web.Request, suffix: str) -> Path:
        """A new empty file, removed when `request` ends."""
        fd, name = tempfile.mkstemp(suffix=suffix, dir=self.directory)
        os.close(fd)
        path = Path(name)
        request[_FILES].append(path)
        return path

    def at_end(self, request: web.Request, callback: Callable[[], None]) -> None:
        """Run `callback` when `request` ends, after its files are removed."""
        request[_AT_END].append(callback)

    def middleware(self) -> Middleware:
        """Give each request its list of scratch files and remove them when it is answered."""

        @web.middleware
        async def spool_cleanup(request: web.Request, handler: Handler) -> web.StreamResponse:
            request[_FILES] = []
            request[_AT_END] = []
            try:
                return await handler(request)
            finally:
                for path in request[_FILES]:
                    path.unlink(missing_ok=True)
                for callback in request[_AT_END]:
                    callback()

        return spool_cleanup


def copy_to(source: IO[bytes], target: Path) -> int:
    """Copy a file object to `target` in small buffers (blocking: run it in a thread)."""
    with target.open("wb") as out:
        shutil.copyfileobj(source, out, _COPY_BUFFER)
        return out.tell()


async def spool_directory(root: str | None = None) -> AsyncIterator[Path]:
    """A private directory for the app's lifetime, removed with its contents on shutdown."""
    with tempfile.TemporaryDirectory(prefix="spark-gateway-", dir=root) as name:
        yield Path(name)
