"""The compiled loop that turns a head region's maps into its siblings' maps: one rank-one term per differing node.

A region and the head of its block share a parent, so their maps differ only through the nodes whose gains differ
(:mod:`spline_utils.engine.propagate`). This loop reads each region's packed code against its head's byte by byte
and adds each term where it finds it, node by node, in one pass over memory.

A sum that is zero in exact arithmetic (a MaxPool's ``relu(b - a)`` with both units off) leaves a residue whose
sign would decide a code: an entry within the round-off of its terms and its head's is set to 0.
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
    head_slack, slack_row, slack_out : ndarray
        Row ``i``'s head's round-off bound is ``head_slack[slack_row[i]]`` (n_heads, 3, size); each row's own is
        written to ``slack_out`` (n, 3, size) unless it is empty.
    packed_codes, regions, head : ndarray
        The layer's codes, 8 nodes a byte (``np.packbits``); the rows' regions; each row's head, as a row.
    pre_activations, pre_row, slope : ndarray, ndarray, float
        The layer's maps (n_parent_rows, 3, n_nodes), each region's row of them, an inactive node's gain.
    jacobian, jacobian_size : ndarray
        The tensor's Jacobian (n_nodes, size) with respect to the layer's output; each row's largest absolute value.
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
