"""Thread pools while the engine runs: one thread each for small networks, where two pools of two threads fight.

torch's intra-op pool and OpenBLAS's pool each take every core. The engine alternates between small torch calls
and small numpy products on MLP-sized networks, and the two pools then spin against each other: measured on the
2-core machine (median of 5 interleaved runs each, load ~10), one thread for both made 2-32-32-32 2.9x, 2-32x5 3.1x,
2-64-64-64 1.6x and 2-128-128 1.5x faster than the default two-and-two, and used the least CPU time in every case.
Networks with a layer wider than :data:`SMALL_LAYER` nodes (convolutional slices) keep the caller's pools: their
large convolutions and products use the cores.

The compiled loops run in as many threads as the caller lets torch use (:func:`kernel_threads`): set
``torch.set_num_threads(1)`` to keep the engine on one core.

The limits are process-wide (that is how both libraries work); while any partition of a small network runs, other
threads' torch and numpy calls run on one thread too, and the caller's settings come back when the last one ends.
"""
from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from typing import Iterator

import torch
from threadpoolctl import ThreadpoolController

SMALL_LAYER = 1024  # networks whose widest hidden layer has at most this many nodes run single-threaded

_LOCK = threading.Lock()
# the loaded BLAS libraries are found again only after an import (a scan costs about 1 ms once torch is loaded; a
# library is loaded by an import, which adds to sys.modules)
_state = {"users": 0, "torch_threads": None, "blas_limits": None, "controller": None, "modules_seen": 0}


@contextmanager
def engine_thread_pools(widest_layer: int) -> Iterator[None]:
    """Run the ``with`` block with one torch thread and one BLAS thread when ``widest_layer <= SMALL_LAYER``."""
    if widest_layer > SMALL_LAYER:
        yield
        return
    with _LOCK:
        if _state["users"] == 0:
            _state["torch_threads"] = torch.get_num_threads()
            if _state["controller"] is None or _state["modules_seen"] != len(sys.modules):
                _state["controller"], _state["modules_seen"] = ThreadpoolController(), len(sys.modules)
            _state["blas_limits"] = _state["controller"].limit(limits=1, user_api="blas")
            torch.set_num_threads(1)
        _state["users"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _state["users"] -= 1
            if _state["users"] == 0:
                _state["blas_limits"].restore_original_limits()
                torch.set_num_threads(_state["torch_threads"])


def kernel_threads() -> int:
    """Threads for the engine's compiled loops: torch's intra-op thread count as the caller set it (while a small
    network runs on one torch thread, the count it had before), at least 1."""
    with _LOCK:
        callers = _state["torch_threads"] if _state["users"] else None
    return max(1, callers or torch.get_num_threads())


def product_threads() -> int:
    """Threads for forming layer outputs and their dense products: :func:`kernel_threads` while the engine holds BLAS
    to one thread (a small network), else 1 (BLAS's own threads share each product)."""
    with _LOCK:
        limited = _state["users"] > 0
    return kernel_threads() if limited else 1
