"""The compiled loops on several cores: contiguous blocks of their items in threads, joined in order.

numba compiles the engine's loops with ``nogil=True``, so Python threads run them side by side. A block is the
one-thread loop on a contiguous range of its items (parent regions, pieces, regions), and the blocks' results are
joined in their order, so the result is exactly the one-thread result. The engine uses as many threads as the caller
lets torch use (``torch.set_num_threads``, read by :func:`~spline_utils.engine.thread_pools.kernel_threads`), and
splits only work that pays for starting a thread (about 0.1 ms). The threads are started for each call and joined
before it returns: nothing is left running between calls, and a forked process starts clean.
"""
from __future__ import annotations

import threading
from typing import Callable

import numpy as np


def work_blocks(work: np.ndarray, threads: int, least_work: float) -> list[tuple[int, int]]:
    """Contiguous ranges of items with about equal total ``work``, at most ``threads`` of them and each about
    ``least_work`` or more: one range, ``[(0, len(work))]``, when the total is less than twice that.

    Parameters
    ----------
    work : ndarray, shape (n_items,)
        Each item's cost, in any unit (``least_work`` is in the same unit).
    """
    total = float(np.sum(work))
    n_blocks = int(min(threads, total // max(least_work, 1e-300), len(work)))
    if n_blocks <= 1:
        return [(0, len(work))]
    cuts = np.searchsorted(np.cumsum(work), total * np.arange(1, n_blocks) / n_blocks, side="right")
    bounds = np.unique(np.r_[0, cuts, len(work)])
    return [(int(start), int(stop)) for start, stop in zip(bounds[:-1], bounds[1:])]


def run_blocks(function: Callable[[int, int], object], blocks: list[tuple[int, int]]) -> list:
    """``[function(start, stop) for start, stop in blocks]``: the first block in the calling thread, each other one
    in a thread of its own; an exception in any block is raised here once all have ended."""
    if len(blocks) == 1:
        return [function(*blocks[0])]
    results: list = [None] * len(blocks)
    errors: list[BaseException] = []

    def run(position: int) -> None:
        try:
            results[position] = function(*blocks[position])
        except BaseException as error:  # raised in the calling thread below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(position,), daemon=True) for position in range(1, len(blocks))]
    for thread in threads:
        thread.start()
    run(0)
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results
