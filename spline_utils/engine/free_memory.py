"""Giving freed memory back to the system while a large partition runs (glibc's ``malloc_trim``).

Arrays below glibc's mmap threshold (up to 32 MiB once large arrays have been freed) come from the heap. A
partition computed in chunks interleaves short-lived chunk temporaries with the long-lived parts of its result there,
so the heap fragments: memory the engine has freed stays counted in the process's RSS. Measured on the MaxPool CNN's
0.5 window at ``max_bytes`` = 1 GiB: after the call the heap held 656 MiB free against a 128 MiB result, and one
``malloc_trim(0)`` took the process from 1,257 MiB to 538 MiB. The engine calls :func:`release_free_memory` after
each chunk of regions or parents (and each tile); it trims when the heap holds more than :data:`FREE_BYTES_TO_TRIM`
free. A trim walks the heap: on that window 729 trims took 2.3 s of an 85-98 s call.

This is an action, not a setting: the allocator's thresholds are left as they are. Where the C library is not glibc
(macOS, Windows, musl) it does nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util

FREE_BYTES_TO_TRIM = 2**27  # free bytes in the heap above which it is trimmed


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def _glibc():
    """glibc with ``mallinfo2`` (2.33 and later) and ``malloc_trim``, or ``None``."""
    try:
        library = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        library.mallinfo2.restype = _Mallinfo2
        library.malloc_trim.argtypes = [ctypes.c_size_t]
        return library
    except (OSError, AttributeError):
        return None


_LIBRARY = _glibc()


def heap_free_bytes() -> int:
    """Bytes free in the main heap and the thread arenas (``mallinfo2().fordblks``); 0 without glibc."""
    return 0 if _LIBRARY is None else int(_LIBRARY.mallinfo2().fordblks)


def release_free_memory(limit: int | None = None) -> bool:
    """``malloc_trim(0)`` when more than ``limit`` (default :data:`FREE_BYTES_TO_TRIM`) bytes lie free in the heap;
    returns whether it trimmed."""
    if _LIBRARY is None or heap_free_bytes() <= (FREE_BYTES_TO_TRIM if limit is None else limit):
        return False
    _LIBRARY.malloc_trim(0)
    return True
