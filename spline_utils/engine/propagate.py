"""Propagating per-region affine maps to the next layer, fast.

On region ``r`` (child of parent region ``p``) a tensor that is affine in the layer's output is
``T(r) = (pre[p] * g_r) J + C(p)``, with ``J`` its Jacobian with respect to that output, ``C`` what the rest of the
network adds on the parent and ``g_r`` the region's gains (1 where a node is active, the negative slope elsewhere).
Two regions of the same parent that lie side by side differ in a few gains, so ``T`` changes by a few rank-one terms.
Regions are sorted along a space-filling curve and cut into blocks of ``RESTART``; the block's middle region (its
head) is computed directly, every other one as that map plus a sparse correction, which costs far less than running
the layers between two ReLUs (a conv layer, say) on every region and adds a single rounding step. The heads
themselves are found the same way, as blocks of heads (:data:`HEAD_LEVELS`): on the paper CNN's canvas 122 maps are
computed directly instead of 3,904, and a region's map is at most two sums of rank-one terms away from a direct one.
"""
from __future__ import annotations

import numpy as np

from spline_utils.engine.correction_kernel import add_corrections
from spline_utils.engine.kernel_threads import run_blocks, work_blocks
from spline_utils.engine.partition import LayerPartition
from spline_utils.engine.polygons import z_order_keys
from spline_utils.engine.thread_pools import kernel_threads

RESTART = 32
HEAD_LEVELS = 2  # blocks of regions, then blocks of their heads; only the heads' heads are computed directly
BUFFER_BYTES = 2**22  # maps corrected in one cache-sized chunk before they are scattered into the result


def maps_from_heads(layer, jacobian: np.ndarray | None, direct, out: np.ndarray | None = None,
                    levels: int = HEAD_LEVELS, slack_out: np.ndarray | None = None) -> np.ndarray:
    """Maps of a tensor affine in ``layer``'s output on every region: head maps plus sparse corrections.

    The tensor is ``T(r) = z(r) J + C(parent(r))`` for the layer's output ``z`` (``jacobian`` is ``J``, shape
    (n_nodes, size)). Regions go in (parent, Morton) order, a cache-sized chunk of restart blocks at a time: copies
    of their head's map (see ``levels``), corrected in place, then scattered into the result; chunks go to threads.

    Parameters
    ----------
    layer : LayerPartition
    jacobian : ndarray, shape (n_nodes, size), or None
        Without a Jacobian every region is computed by ``direct``.
    direct : callable
        ``direct(index, out)`` gives the exact maps (len(index), 3, size) of regions ``index`` of ``layer``, written
        into ``out`` where it is not ``None``.
    out : ndarray, shape (n_regions, 3, size), optional
        Where to write the maps (returned): a buffer used again chunk after chunk touches no fresh memory.
    levels : int
        1: the heads' maps come from ``direct``; more: from blocks of heads, ``levels - 1`` deep.
    slack_out : ndarray, shape (n_regions, 3, size), optional
        Where to write each entry's round-off bound (heads pass theirs on to their blocks).
    """
    n_regions = layer.num_regions
    if _all_direct(layer, jacobian):
        if slack_out is not None:
            slack_out[...] = 0.0
        return direct(np.arange(n_regions), out)
    order = np.lexsort((z_order_keys(layer.polygons.vertex_means()), layer.parent))
    sorted_parent = layer.parent[order]
    position = position_in_group(sorted_parent) % RESTART
    head_row = _middle_of_blocks(sorted_parent, position)  # each sorted region's head, as a sorted row
    is_head = head_row == np.arange(n_regions)
    packed_codes, pre_activations = layer.packed_codes, layer.pre_activations
    heads = order[is_head]
    head_regions = regions_of(layer, heads, pre_activations) if levels > 1 else None
    head_of = (np.cumsum(is_head) - 1)[head_row]  # each sorted region's head, as a row of head_maps
    if head_regions is not None and not _all_direct(head_regions, jacobian):
        head_slack, slack_row = np.zeros((len(heads), 3, jacobian.shape[1])), head_of
        head_maps = maps_from_heads(head_regions, jacobian, lambda local, out: direct(heads[local], out),
                                    levels=levels - 1, slack_out=head_slack)
    else:  # heads computed directly have no round-off slack: one row of zeros serves them all
        head_slack, slack_row = np.zeros((1, 3, jacobian.shape[1])), np.zeros(n_regions, dtype=head_of.dtype)
        head_maps = direct(heads, None)
    result = np.empty((n_regions, 3, jacobian.shape[1])) if out is None else out
    jacobian_size = np.abs(jacobian).max(axis=1) if jacobian.shape[1] else np.zeros(len(jacobian))
    heads_per_chunk = max(1, BUFFER_BYTES // (RESTART * result[0].nbytes))
    bounds = np.r_[np.flatnonzero(position == 0)[::heads_per_chunk], n_regions]

    def correct(first_chunk: int, last_chunk: int) -> None:  # chunks first_chunk to last_chunk - 1, own buffers
        buffer = np.empty((heads_per_chunk * RESTART, 3, jacobian.shape[1]))
        slack_buffer = np.empty_like(buffer) if slack_out is not None else np.empty((0, 3, jacobian.shape[1]))
        for start, stop in zip(bounds[first_chunk:last_chunk], bounds[first_chunk + 1:last_chunk + 1]):
            regions, chunk, slack = order[start:stop], buffer[:stop - start], slack_buffer[:stop - start]
            np.take(head_maps, head_of[start:stop], axis=0, out=chunk, mode="clip")  # in range: clip avoids a copy
            add_corrections(chunk, head_slack, slack_row[start:stop], slack, packed_codes, regions,
                            head_row[start:stop] - start, pre_activations, layer.pre_row, float(layer.slope),
                            jacobian, jacobian_size)
            result[regions] = chunk
            if slack_out is not None:
                slack_out[regions] = slack

    run_blocks(correct, work_blocks(np.ones(len(bounds) - 1), kernel_threads(), 2))
    return result


def _all_direct(layer, jacobian: np.ndarray | None) -> bool:
    """Whether every region of ``layer`` is computed directly: no Jacobian to correct with, too few regions, or
    nine in ten regions would be heads."""
    n_regions = layer.num_regions
    return jacobian is None or n_regions < 4 * RESTART or 10 * _head_count(layer.parent) > 9 * n_regions


def regions_of(layer, index: np.ndarray, pre_activations: np.ndarray) -> LayerPartition:
    """Regions ``index`` of ``layer`` as a layer of their own, reading the same pre-activation maps."""
    regions = LayerPartition(layer.polygons.subset(index), layer.parent[index], layer.packed_codes[index],
                             pre_activations, layer.slope, layer.shape)
    regions.pre_row = layer.pre_row[index]
    return regions


def _middle_of_blocks(sorted_parent: np.ndarray, position: np.ndarray) -> np.ndarray:
    """For each region in sorted (parent, Morton) order, the sorted row of its block's middle region: its head.

    A block is up to :data:`RESTART` regions of one parent (``position`` is a region's place in its block). Regions
    along the curve drift apart in code, so a head in the middle is half as far from its block's ends as the first
    region would be: on the paper CNN's canvas 7.5 differing nodes a region instead of 10.8.
    """
    block_start = np.arange(len(sorted_parent)) - position
    group_end = np.r_[np.flatnonzero(sorted_parent[1:] != sorted_parent[:-1]) + 1, len(sorted_parent)]
    block_end = np.minimum(block_start + RESTART, group_end[np.searchsorted(group_end, block_start, side="right")])
    return block_start + (block_end - block_start - 1) // 2


def _head_count(parent: np.ndarray) -> int:
    """How many head regions the blocks have: each parent's children in blocks of :data:`RESTART`."""
    children = np.unique(parent, return_counts=True)[1]
    return int((-(-children // RESTART)).sum())


def position_in_group(sorted_groups: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal values of a sorted array."""
    starts = np.r_[True, sorted_groups[1:] != sorted_groups[:-1]]
    start_index = np.maximum.accumulate(np.where(starts, np.arange(len(sorted_groups)), 0))
    return np.arange(len(sorted_groups)) - start_index
