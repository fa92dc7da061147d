"""Keeping freed memory returned to the system (the gateway and its decoder processes)."""

from __future__ import annotations

import ctypes
from typing import Final

_M_MMAP_THRESHOLD: Final = -3  # glibc's mallopt parameter number


def keep_large_buffers_out_of_the_heap() -> None:
    """Allocate buffers over 128 KiB with mmap, so freeing one returns it to the system.

    glibc raises its mmap threshold after each large free (up to 32 MiB); a request body of
    tens of MiB then lands in the heap and stays resident after the request. Setting the
    threshold fixes it. The add-on image uses musl, which has no such heap: nothing to do.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
