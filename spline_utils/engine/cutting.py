"""Cutting convex regions by the zero lines of a layer's nodes: the core of the exact partition engine.

The compiled loops of :mod:`~spline_utils.engine.cut_kernel` find the lines that cross each parent region (a
bounding-box test first, then the signs at the region's vertices), cut each parent by them and read each piece's layer
code at a point inside it; this module checks the caps around them. The arrangement does not depend on the order of
the cuts. :func:`lines_near_boxes` is the vectorized nearness test the spline segments use.
"""
from __future__ import annotations

import warnings

import numpy as np

from spline_utils.engine.cut_kernel import (CUT_PAST_MAX_REGIONS, CUT_PAST_ROOM, crossing_pairs, cut_parents,
                                           piece_codes)
from spline_utils.engine.polygons import Polygons
from spline_utils.engine.region_bound import OutOfRoom, check_growth, too_large
from spline_utils.engine.tolerance import (RELATIVE_TOLERANCE, ROUNDING_TOLERANCE, Frame, ResolutionWarning,
                                          line_tolerance, rounding_tolerance)

PAIRS_PER_CHUNK = 2**16  # (parent, node) pairs whose nearness is tested in one vectorized step (cache-sized)


def lines_near_boxes(pre: np.ndarray, box: np.ndarray, frame: Frame,
                     slack: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The (parent, node) pairs whose zero line passes within ``slack`` tolerances of the parent's bounding box.

    A line farther from the box centre than its variation over the box (plus the tolerance) leaves the whole box on
    one side. The test runs on cache-sized chunks of parents, in place, first against a cheap upper bound of
    :func:`~spline_utils.engine.tolerance.line_tolerance`, then exactly on the few pairs that pass.

    Parameters
    ----------
    pre : ndarray, shape (n_parents, 3, n_nodes)
        Each node's affine map on each parent region (rows offset, d/dx, d/dy).
    box : ndarray, shape (n_parents, 4)
        ``(xmin, xmax, ymin, ymax)`` of each parent region.

    Returns
    -------
    parent, node : ndarray of int64, shape (n_pairs,)
        In row-major (parent, node) order.
    """
    n_parents, _, n_nodes = pre.shape
    centre_x, centre_y = (box[:, :1] + box[:, 1:2]) / 2, (box[:, 2:3] + box[:, 3:]) / 2
    # line_tolerance <= (RELATIVE + ROUNDING) (|c| + |a1| (|x0| + h) + |a2| (|y0| + h)); doubled against round-off
    scale = 2 * slack * (RELATIVE_TOLERANCE + ROUNDING_TOLERANCE)
    reach_x = (box[:, 1:2] - box[:, :1]) / 2 + scale * (abs(frame.centre_x) + frame.half)
    reach_y = (box[:, 3:] - box[:, 2:3]) / 2 + scale * (abs(frame.centre_y) + frame.half)
    parents, nodes = [], []
    step = max(1, PAIRS_PER_CHUNK // max(n_nodes, 1))
    for first in range(0, n_parents, step):
        rows = slice(first, first + step)
        offset, slope_x, slope_y = pre[rows, 0], pre[rows, 1], pre[rows, 2]
        centre_value = slope_x * centre_x[rows]
        centre_value += offset
        term = slope_y * centre_y[rows]
        centre_value += term
        bound = np.abs(slope_x)
        bound *= reach_x[rows]
        term = np.abs(slope_y, out=term)
        term *= reach_y[rows]
        bound += term
        term = np.abs(offset, out=term)
        term *= scale
        bound += term
        parent, node = np.nonzero(np.abs(centre_value, out=centre_value) <= bound)
        parents.append(parent + first)
        nodes.append(node)
    parent = np.concatenate(parents) if parents else np.zeros(0, np.int64)
    node = np.concatenate(nodes) if nodes else np.zeros(0, np.int64)
    lines = pre[parent, :, node]
    near = _box_reach(lines, box[parent], slack * line_tolerance(lines, frame))
    return parent[near], node[near]


def _box_reach(lines: np.ndarray, box: np.ndarray, tolerance: np.ndarray) -> np.ndarray:
    """Whether each line (n, 3) passes within ``tolerance`` (n,) of its box (n, 4), shape (n,)."""
    centre_value = lines[:, 0] + lines[:, 1] * (box[:, 0] + box[:, 1]) / 2 + lines[:, 2] * (box[:, 2] + box[:, 3]) / 2
    reach = np.abs(lines[:, 1]) * (box[:, 1] - box[:, 0]) / 2 + np.abs(lines[:, 2]) * (box[:, 3] - box[:, 2]) / 2
    return np.abs(centre_value) <= reach + tolerance


def _crossing_lines(parents: Polygons, pre: np.ndarray, frame: Frame) -> tuple["_CrossingLines", np.ndarray]:
    """Which node lines cut each parent region, and on which side the others leave it.

    Returns
    -------
    crossing : _CrossingLines
        The (parent, node) pairs whose zero line cuts the parent region's interior.
    above : bool (n_parents, n_nodes)
        Some vertex is strictly above the line and none strictly below: the node is active on the whole region.
    """
    above, parent, node, unresolved = crossing_pairs(pre, parents.vertices, parents.starts, parents.counts,
                                                     frame.centre_x, frame.centre_y, frame.half)
    return _CrossingLines(pre, parent, node, unresolved), above


class _CrossingLines:
    """The lines crossing each parent region, in node order (line ``j`` of a parent is its ``j``-th such node).

    Built from the crossing (parent, node) pairs in row-major order.
    """

    def __init__(self, pre: np.ndarray, parent: np.ndarray, node: np.ndarray, unresolved: int = 0):
        self.pre, self.parent, self.node = pre, parent, node
        self.unresolved = unresolved  # polygons a line came within the resolution of without cutting them
        self.count = np.bincount(parent, minlength=len(pre))
        self.first = np.cumsum(self.count) - self.count

    def all_lines(self) -> np.ndarray:
        """Every crossing pair's line ``(c, a1, a2)``, in pair order (parent after parent), C-contiguous (n, 3)."""
        return np.ascontiguousarray(self.pre[self.parent, :, self.node])

    def of_parent(self, parent: int) -> np.ndarray:
        """All lines crossing region ``parent``, shape (k, 3)."""
        return self.pre[parent][:, self.node[self.first[parent]:self.first[parent] + self.count[parent]]].T


def cut_by_layer(parents: Polygons, pre: np.ndarray, frame: Frame, max_regions: int, layer_index: int,
                 room: int | None = None):
    """Cut every parent region by the zero lines of this layer's nodes that cross it.

    The lines crossing each parent are found by the compiled loop
    :func:`~spline_utils.engine.cut_kernel.crossing_pairs` (:func:`_crossing_lines`); the compiled loop
    :func:`~spline_utils.engine.cut_kernel.cut_parents` then cuts each parent's pieces by them in node order.

    Returns the pieces (grouped by parent, parents in order), each piece's parent index, its layer code, packed 8
    nodes a byte as ``np.packbits(codes, axis=1)`` (uint8, shape (n_pieces, ceil(n_nodes / 8))), and how many times
    a line came within the resolution of a corner without measurably crossing (:func:`warn_unresolved`). Raises
    :class:`PartitionTooLarge` past ``max_regions`` pieces, and :class:`OutOfRoom` past ``room`` pieces.
    """
    room = max_regions if room is None else room
    crossing_lines, above = _crossing_lines(parents, pre, frame)
    check_growth(parents, crossing_lines.count, crossing_lines.of_parent, frame, max_regions, layer_index)
    lines = crossing_lines.all_lines()
    vertices, counts, parent, unresolved, status = cut_parents(
        parents.vertices, parents.starts, parents.counts, crossing_lines.first, crossing_lines.count,
        lines, line_tolerance(lines, frame), rounding_tolerance(lines, frame),
        max_regions, room)
    if status == CUT_PAST_MAX_REGIONS:
        raise too_large(layer_index, f"already has more than max_regions={max_regions} regions")
    if status == CUT_PAST_ROOM:
        raise OutOfRoom()
    pieces = Polygons(vertices, counts)
    codes = piece_codes(vertices, pieces.starts, counts, parent, np.packbits(above, axis=1), crossing_lines.first,
                        crossing_lines.count, lines, crossing_lines.node)
    return pieces, parent, codes, unresolved + crossing_lines.unresolved


def warn_unresolved(layer_index: int, unresolved: int, frame: Frame) -> None:
    """The :class:`ResolutionWarning` for ``unresolved`` places in hidden layer ``layer_index`` (none when 0)."""
    if unresolved:
        warnings.warn(f"hidden layer {layer_index}: {unresolved} times a node's line came within the "
                      f"engine's resolution ({RELATIVE_TOLERANCE:g} of the domain's half-width, {frame.half:.3g}) of "
                      "a region's corner without measurably crossing the region: it passes through the corner, or "
                      "it cuts off a sliver thinner than that, which is merged into its neighbour; partition a "
                      "smaller rectangle to resolve it", ResolutionWarning, stacklevel=2)
