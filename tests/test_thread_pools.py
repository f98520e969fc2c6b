"""The engine's thread-pool choice: one torch and one BLAS thread for small networks, the caller's pools after."""
from __future__ import annotations

import torch
import torch.nn as nn
from threadpoolctl import threadpool_info

import spline_utils as su
from spline_utils.engine import partition2d as entry, thread_pools


def blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def record_pools(monkeypatch) -> list:
    seen = []
    original = entry.partition_in_tiles

    def recording(*args, **kwargs):
        seen.append((torch.get_num_threads(), blas_threads()))
        return original(*args, **kwargs)

    monkeypatch.setattr(entry, "partition_in_tiles", recording)
    return seen


def test_small_networks_run_single_threaded_and_the_callers_pools_come_back(monkeypatch):
    torch.set_num_threads(2)
    before = (torch.get_num_threads(), blas_threads())
    seen = record_pools(monkeypatch)
    su.partition2d(nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2)))
    assert seen[0][0] == 1 and all(n == 1 for n in seen[0][1])
    assert (torch.get_num_threads(), blas_threads()) == before


def test_wide_networks_keep_the_callers_pools(monkeypatch):
    torch.set_num_threads(2)
    monkeypatch.setattr(thread_pools, "SMALL_LAYER", 4)
    seen = record_pools(monkeypatch)
    su.partition2d(nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2)))
    assert seen[0][0] == 2
