"""The compiled loop that turns a head region's maps into its siblings' maps: one rank-one term per differing node.

A region and the head of its block share a parent, so their maps differ only through the nodes whose gains differ
(:mod:`spline_utils.engine.propagate`). In numpy the differing (region, node) pairs were found with ``nonzero`` and
``unpackbits``, their terms gathered into a sparse matrix and multiplied by the Jacobian: four passes over memory
and a matrix built per chunk. This loop reads each region's packed code against its head's byte by byte and adds
each term where it finds it, in the same order (node by node, for each component), so the sums round as before.

A sum that is zero in exact arithmetic is not zero in floating point: a MaxPool's ``relu(b - a)`` where both pooled
units are off is exactly 0 on a region, but its head, where one is on, gives it a nonzero map, and the corrections
leave a rounding residue of about 1e-17 whose sign then decided the node's code (on the MaxPool CNN's canvas 412 of
7,684 regions of its first pooling layer had a code the model's own forward contradicts). A corrected entry within
the round-off of the terms it was summed from (:data:`ROUNDING_STEPS` ulp for each term, against the sizes of the
head's entry and of the terms) is that residue, and is set to 0.

A head's own maps may come from corrections too (blocks of heads, :mod:`spline_utils.engine.propagate`), and then
carry their own residue, as large as the head's head's terms, not its own entry. The bound an entry was left with is
its ``slack``, and a sibling's bound adds its head's: without it, a head whose large term had cancelled (``b`` on at
its head's head, off at the head) passed a residue of about 1e-17 on to a sibling where ``relu(b - a)`` is exactly 0
(7 of the MaxPool CNN's 863,366 first-pooling regions on its full canvas).
"""
from __future__ import annotations

import numba
import numpy as np

#: Rounding steps allowed for each term a corrected entry sums (and for the head's own entry): its round-off bound.
ROUNDING_STEPS = 8
UNIT_ROUNDOFF = 2.0**-53


@numba.njit(cache=True, nogil=True)
def add_corrections(maps, head_slack, slack_row, slack_out, packed_codes, regions, head, pre_activations, pre_row,
                    slope, jacobian, jacobian_size):
    """Add to ``maps[i]`` its difference from its head's maps, in place; entries within the round-off of the sum set
    to 0.

    Parameters
    ----------
    maps : ndarray, shape (n, 3, size)
        Row ``i`` holds the maps of region ``regions[head[i]]`` (the head's own row is left as it is).
    head_slack : ndarray, shape (n_heads, 3, size)
        The round-off bound of each head's maps (0 where they were computed directly).
    slack_row : ndarray of int64, shape (n,)
        Row ``i``'s head is row ``slack_row[i]`` of ``head_slack``.
    slack_out : ndarray, shape (n, 3, size) or (0, 3, size)
        Where to write each row's round-off bound (0 where an entry was set to 0); not written when empty.
    packed_codes : ndarray of uint8, shape (n_regions, n_bytes)
        The layer's codes, 8 nodes a byte (``np.packbits`` order).
    regions, head : ndarray of int64, shape (n,)
        The layer's regions and, for each, the row of ``regions`` that holds its head (same parent).
    pre_activations : ndarray, shape (n_parent_rows, 3, n_nodes)
        The layer's pre-activation maps; region ``r`` reads row ``pre_row[r]``.
    slope : float
        The gain of an inactive node (1 for an active one).
    jacobian : ndarray, shape (n_nodes, size)
        The tensor's Jacobian with respect to the layer's output.
    jacobian_size : ndarray, shape (n_nodes,)
        The largest absolute value of each row of ``jacobian``: bounds the size of each term.
    """
    n_bytes, size = packed_codes.shape[1], jacobian.shape[1]
    keep_slack = slack_out.shape[0] > 0
    term_size = np.empty(3)
    for i in range(len(regions)):
        region, head_region = regions[i], regions[head[i]]
        row, slack = pre_row[region], head_slack[slack_row[i]]
        term_size[:] = 0.0
        n_terms = 0
        for byte in range(n_bytes):
            own = packed_codes[region, byte]
            difference = own ^ packed_codes[head_region, byte]
            if difference == 0:
                continue
            for bit in range(8):
                mask = 128 >> bit
                if difference & mask == 0:
                    continue
                node = 8 * byte + bit
                gain_change = 1.0 - slope if own & mask else slope - 1.0
                n_terms += 1
                for component in range(3):
                    change = pre_activations[row, component, node] * gain_change
                    term_size[component] += abs(change) * jacobian_size[node]
                    for output in range(size):
                        maps[i, component, output] += change * jacobian[node, output]
        if n_terms == 0:
            if keep_slack:
                slack_out[i] = slack
            continue
        steps = ROUNDING_STEPS * (n_terms + 1) * UNIT_ROUNDOFF
        for component in range(3):
            for output in range(size):
                bound = steps * (abs(maps[head[i], component, output]) + term_size[component]) + \
                    slack[component, output]
                zero = abs(maps[i, component, output]) <= bound
                if zero:
                    maps[i, component, output] = 0.0
                if keep_slack:
                    slack_out[i, component, output] = 0.0 if zero else bound
