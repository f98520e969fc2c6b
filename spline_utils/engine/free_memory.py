"""Freed heap memory given back to the system between chunks (glibc's ``malloc_trim``; elsewhere nothing).

A chunked run frees small temporaries among its result's long-lived parts, and the heap keeps that memory (656 MiB
after a 128 MiB result, README). An action, not a setting: the allocator's thresholds stay as they are.
"""
from __future__ import annotations

import ctypes
import ctypes.util

import numpy as np

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
_copied_since_trim = 0  # bytes :func:`concatenate_freeing` copied (and freed) since it last trimmed


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


def concatenate_freeing(parts: list[np.ndarray]) -> np.ndarray:
    """``np.concatenate(parts)`` that empties the list ``parts``, freeing each part once copied and giving the heap's
    free memory back every :data:`FREE_BYTES_TO_TRIM` bytes copied, counted across calls: the peak is the result and
    about one part, not twice the parts. (Counted per call, the joins of a run's layers, about 100 MB each, never
    reached it: on the MaxPool CNN's full canvas the freed parts stayed in the heap and the RSS rose by 1.0 GB over
    the joins.)"""
    global _copied_since_trim
    if len(parts) == 1:
        return parts.pop()
    result = np.empty((sum(len(part) for part in parts), *parts[0].shape[1:]), dtype=np.result_type(*parts))
    start = 0
    parts.reverse()
    while parts:
        part = parts.pop()
        result[start:start + len(part)] = part
        start, _copied_since_trim = start + len(part), _copied_since_trim + part.nbytes
        del part
        if _copied_since_trim >= FREE_BYTES_TO_TRIM:
            release_free_memory()
            _copied_since_trim = 0
    return result
