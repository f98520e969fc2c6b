"""Propagating per-region affine maps to the next layer, fast.

On region ``r`` (child of parent region ``p``) a tensor that is affine in the layer's output is
``T(r) = (pre[p] * g_r) J + C(p)``, with ``J`` its Jacobian with respect to that output, ``C`` what the rest of the
network adds on the parent and ``g_r`` the region's gains (1 where a node is active, the negative slope elsewhere).
Two regions of the same parent that lie side by side differ in a few gains, so ``T`` changes by a few rank-one terms.
Regions are sorted along a space-filling curve and cut into blocks of ``RESTART``; the block's first region (its
head) is computed directly, every other one as that map plus a sparse correction, which costs far less than running
the layers between two ReLUs (a conv layer, say) on every region and adds a single rounding step.
"""
from __future__ import annotations

import numpy as np
from scipy import sparse

from spline_utils.engine.polygons import z_order_keys

RESTART = 32
BUFFER_BYTES = 2**22  # maps corrected in one cache-sized chunk before they are scattered into the result


def maps_from_heads(layer, jacobian: np.ndarray | None, direct) -> np.ndarray:
    """Maps of a tensor affine in ``layer``'s output on every region: head maps plus sparse corrections.

    The tensor is ``T(r) = z(r) J + C(parent(r))`` for the layer's output ``z`` (``jacobian`` is ``J``, shape
    (n_nodes, size)). Regions are visited in sorted (parent, Morton) order, whole restart blocks at a time: each
    chunk's maps start as copies of their head's map (``direct(index)``, computed without corrections) in a reusable
    cache-sized buffer, get their sparse corrections there, and are scattered into the result once.

    Parameters
    ----------
    layer : LayerPartition
    jacobian : ndarray, shape (n_nodes, size), or None
        Without a Jacobian every region is computed by ``direct``.
    direct : callable
        ``direct(index)`` gives the exact maps (len(index), 3, size) of regions ``index`` of ``layer``.
    """
    n_regions = layer.num_regions
    if jacobian is None or n_regions < 4 * RESTART:
        return direct(np.arange(n_regions))
    order = np.lexsort((z_order_keys(layer.polygons.vertex_means()), layer.parent))
    position = position_in_group(layer.parent[order]) % RESTART
    is_head = position == 0
    head_maps = direct(order[is_head])
    head_of = np.cumsum(is_head) - 1  # each sorted region's head, as a row of head_maps
    packed_codes = layer.packed_codes
    result = np.empty((n_regions, 3, jacobian.shape[1]))
    heads_per_chunk = max(1, BUFFER_BYTES // (RESTART * result[0].nbytes))
    buffer = np.empty((heads_per_chunk * RESTART, 3, jacobian.shape[1]))
    bounds = np.r_[np.flatnonzero(is_head)[::heads_per_chunk], n_regions]
    for start, stop in zip(bounds[:-1], bounds[1:]):
        regions, chunk = order[start:stop], buffer[:stop - start]
        np.take(head_maps, head_of[start:stop], axis=0, out=chunk, mode="clip")  # in range: clip avoids a copy
        row, node = _differing_nodes(packed_codes[regions], np.arange(stop - start) - position[start:stop])
        _add_differences(chunk, layer, jacobian, regions, row, node)
        result[regions] = chunk
    return result


def _differing_nodes(packed_codes: np.ndarray, head: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (row, node) pairs where row ``i`` of bit-packed codes (n, n_bytes) differs from row ``head[i]``.

    Returns two int64 arrays of the same length, in row-major order.
    """
    difference = packed_codes ^ packed_codes[head]
    row, byte = np.nonzero(difference)
    pair, bit = np.nonzero(np.unpackbits(difference[row, byte][:, None], axis=1))
    return row[pair], 8 * byte[pair] + bit


def _add_differences(maps: np.ndarray, layer, jacobian: np.ndarray, regions: np.ndarray, row: np.ndarray,
                     node: np.ndarray):
    """Add to the maps (n, 3, n_outputs) of ``regions`` their difference from their head's, in place.

    Region ``regions[i]`` and its head have the same parent and differ in the gains of nodes ``node[row == i]``;
    each adds a rank-one term, the node's gain change times its parent map, through the Jacobian.
    """
    gain_change = np.where(layer.code_bits(regions[row], node), 1.0 - layer.slope, layer.slope - 1.0)
    change = layer.pre_activations[layer.pre_row[regions[row]], :, node] * gain_change[:, None]
    # one sparse matrix for all three components: its row 3 i + c holds component c of region i's changes
    per_region = np.bincount(row, minlength=len(regions))
    first = np.cumsum(per_region) - per_region
    slot = (2 * first[row] + np.arange(len(row)))[:, None] + per_region[row, None] * np.arange(3)
    data, indices = np.empty(3 * len(row)), np.empty(3 * len(row), dtype=np.int32)
    data[slot], indices[slot] = change, node[:, None]
    row_starts = np.r_[0, np.cumsum(np.repeat(per_region, 3))]
    matrix = sparse.csr_matrix((data, indices, row_starts), shape=(3 * len(regions), jacobian.shape[0]))
    flat_maps = maps.reshape(-1, jacobian.shape[1])
    flat_maps += matrix @ jacobian


def position_in_group(sorted_groups: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal values of a sorted array."""
    starts = np.r_[True, sorted_groups[1:] != sorted_groups[:-1]]
    start_index = np.maximum.accumulate(np.where(starts, np.arange(len(sorted_groups)), 0))
    return np.arange(len(sorted_groups)) - start_index
