"""Keeping freed memory returned to the system (the gateway and its decoder processes)."""

from __future__ import annotations

import ctypes
from asyncio import selector_events
from typing import Final

_M_MMAP_THRESHOLD: Final = -3  # glibc's mallopt parameter number
MMAP_THRESHOLD: Final = 128 * 1024
# What one socket read may return: below the mmap threshold, so its buffer comes from the heap.
SOCKET_READ_BYTES: Final = 64 * 1024


def keep_large_buffers_out_of_the_heap() -> None:
    """Allocate buffers over 128 KiB with mmap, so freeing one returns it to the system.

    glibc raises its mmap threshold after each large free (up to 32 MiB); a request body of
    tens of MiB then lands in the heap and stays resident after the request. Setting the
    threshold fixes it. The add-on image uses musl, which has no such heap: nothing to do.

    asyncio reads every socket into a fresh 256 KiB buffer, which this threshold would put
    in a new mapping each time: an mmap, a page fault for every 4 KiB that arrives and an
    munmap on every read (13 faults per voice command). Reads are capped below the threshold
    instead, so their buffers are reused from the heap.
    """
    # asyncio has no public setting for it; the attribute exists from Python 3.4 to 3.14.
    selector_events._SelectorTransport.max_size = SOCKET_READ_BYTES  # type: ignore[attr-defined]
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
