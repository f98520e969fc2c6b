"""Propagating per-region affine maps through an affine block, fast.

On region ``r`` (child of parent region ``p``) the next layer's pre-activation is
``pre_next[r] = J (pre[p] * g_r) + b``, with ``J`` the block's linear part, ``b`` its offset and ``g_r`` the
region's gains (1 where a node is active, the negative slope elsewhere). Two regions of the same parent that lie side
by side differ in a few gains, so ``pre_next`` changes by a few rank-one terms. Regions are sorted along a
space-filling curve and cut into blocks of ``RESTART``; the block's first region is computed directly, every other one
as that map plus a sparse correction, which costs far less than applying the block (a conv layer, say) to every
region and adds a single rounding step.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import sparse

CHUNK_BYTES = 2**27
RESTART = 32
MAX_JACOBIAN_ENTRIES = 2**25
ROWS_PER_CORRECTION = 16384  # regions whose sparse corrections are applied in one product


def apply_block(block, state, shape=None) -> np.ndarray:
    """Apply an affine block to affine maps ``(n, 3, ...) -> (n, 3, n_features)``.

    Row 0 of each map is the offset (the block's own offset is added), rows 1 and 2 the slopes (linear part only).
    ``shape`` is the per-sample feature shape the block expects; by default the state's own trailing shape.
    """
    state = torch.as_tensor(state)
    n = state.shape[0]
    if shape is not None:
        state = state.reshape(n, 3, *shape)
    with torch.no_grad():
        offset = block.apply(state[:, 0], with_offset=True)
        linear = block.apply(state[:, 1:].reshape(2 * n, *state.shape[2:]), with_offset=False)
    return torch.cat([offset.reshape(n, 1, -1), linear.reshape(n, 2, -1)], dim=1).numpy()


def map_in_chunks(function, n_items: int) -> np.ndarray:
    """Evaluate ``function(index)`` on chunks of indices and concatenate (bounded temporary memory)."""
    first = function(np.arange(min(n_items, 1)))
    per_item = max(first[0].nbytes, 1) if len(first) else 1
    chunk = max(1, CHUNK_BYTES // per_item)
    parts = [function(np.arange(start, min(start + chunk, n_items))) for start in range(0, n_items, chunk)]
    return np.concatenate(parts) if parts else first


def next_pre_activations(block, layer) -> np.ndarray:
    """The next layer's pre-activation maps on every region of ``layer``: shape (n_regions, 3, n_next_nodes).

    Parameters
    ----------
    block : AffineBlock
        The affine modules between ``layer``'s nonlinearity and the next one.
    layer : LayerPartition
        Its regions, parents, codes, pre-activation maps, slope and shape.
    """
    def direct(index):
        return map_in_chunks(lambda chunk: apply_block(block, layer.post_activations(index[chunk]), layer.shape),
                             len(index))

    n_regions = layer.num_regions
    jacobian = _jacobian(block, layer.shape)
    if jacobian is None or n_regions < 4 * RESTART:
        return direct(np.arange(n_regions))
    order = np.lexsort((_morton(layer.polygons.vertex_means()), layer.parent))
    position = _position_in_group(layer.parent[order])
    sorted_head = np.arange(n_regions) - position % RESTART
    head = np.empty(n_regions, dtype=np.int64)
    head[order] = order[sorted_head]
    is_head = head == np.arange(n_regions)
    result = np.empty((n_regions, 3, jacobian.shape[1]))
    result[is_head] = direct(np.nonzero(is_head)[0])
    rows = np.nonzero(~is_head)[0]
    for start in range(0, len(rows), ROWS_PER_CORRECTION):
        chunk = rows[start:start + ROWS_PER_CORRECTION]
        result[chunk] = result[head[chunk]] + _differences(layer, jacobian, chunk, head[chunk])
    return result


def _differences(layer, jacobian: np.ndarray, regions: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """``pre_next[regions] - pre_next[previous]`` for pairs of regions with the same parent."""
    codes = layer.layer_codes[regions]
    row, node = np.nonzero(codes != layer.layer_codes[previous])
    gain_change = np.where(codes[row, node], 1.0 - layer.slope, layer.slope - 1.0)
    parent_maps = layer.pre_activations[layer.parent[regions[row]], :, node]
    out = np.empty((len(regions), 3, jacobian.shape[1]))
    for component in range(3):
        change = sparse.csr_matrix((gain_change * parent_maps[:, component], (row, node)),
                                   shape=(len(regions), jacobian.shape[0]))
        out[:, component] = change @ jacobian
    return out


def _jacobian(block, shape) -> np.ndarray | None:
    """The block's linear part as a (n_inputs, n_outputs) matrix, or None when it would be too large."""
    n_inputs = int(np.prod(shape))
    with torch.no_grad():
        n_outputs = block.apply(torch.zeros((1, *shape), dtype=torch.float64)).numel()
        if n_inputs * n_outputs > MAX_JACOBIAN_ENTRIES:
            return None
        basis = torch.eye(n_inputs, dtype=torch.float64).reshape(n_inputs, *shape)
        return block.apply(basis, with_offset=False).reshape(n_inputs, n_outputs).numpy()


def _position_in_group(sorted_groups: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal values of a sorted array."""
    starts = np.r_[True, sorted_groups[1:] != sorted_groups[:-1]]
    start_index = np.maximum.accumulate(np.where(starts, np.arange(len(sorted_groups)), 0))
    return np.arange(len(sorted_groups)) - start_index


def _morton(points: np.ndarray, bits: int = 16) -> np.ndarray:
    """Z-order (Morton) key of 2-D points: nearby points get nearby keys."""
    low, high = points.min(axis=0), points.max(axis=0)
    scaled = ((points - low) / np.where(high > low, high - low, 1.0) * (2**bits - 1)).astype(np.uint64)
    key = np.zeros(len(points), dtype=np.uint64)
    for bit in range(bits):
        for axis in range(2):
            key |= ((scaled[:, axis] >> np.uint64(bit)) & np.uint64(1)) << np.uint64(2 * bit + axis)
    return key
