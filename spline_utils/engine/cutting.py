"""Cutting convex regions by the zero lines of a layer's nodes: the core of the exact partition engine.

Vectorized tests find the lines that cross each parent region (a bounding-box bound first, then the signs at the
region's vertices); the compiled loop of :mod:`~spline_utils.engine.cut_kernel` cuts each parent by them, and each
piece's layer code is read at a point inside it. The arrangement does not depend on the order of the cuts.
"""
from __future__ import annotations

import warnings

import numpy as np

from spline_utils.engine.cut_kernel import CUT_PAST_MAX_REGIONS, CUT_PAST_ROOM, cut_parents
from spline_utils.engine.polygons import Polygons
from spline_utils.engine.region_bound import OutOfRoom, check_growth, too_large
from spline_utils.engine.tolerance import (RELATIVE_TOLERANCE, ROUNDING_TOLERANCE, Frame, ResolutionWarning,
                                          line_tolerance, rounding_tolerance)

MATMUL_GROUP = 64  # parents cut into at least this many pieces compute all their pieces' codes by matrix products
ENTRIES_PER_PRODUCT = 2**18  # outputs of one such product (cache-sized)
PAIRS_PER_CHUNK = 2**16  # (parent, node) pairs whose nearness is tested in one vectorized step (cache-sized)


def _layer_codes(pieces: Polygons, parent: np.ndarray, crossing_lines: "_CrossingLines",
                 above: np.ndarray) -> np.ndarray:
    """Each piece's code for this layer's nodes, at its vertex mean (strictly inside it).

    Parents cut into many pieces evaluate all their nodes with matrix products on cache-sized chunks of pieces; for
    the others only the lines that cross the parent are evaluated, the rest keep the parent's side (``above``).
    """
    pre = crossing_lines.pre
    codes = np.take(above, parent, axis=0)  # the parent's side, then the nodes that may differ
    points = np.concatenate([np.ones((len(parent), 1)), pieces.vertex_means()], axis=1)
    group_sizes = np.bincount(parent, minlength=len(pre))
    group_starts = np.cumsum(group_sizes) - group_sizes
    rows_per_product = max(1, ENTRIES_PER_PRODUCT // max(pre.shape[2], 1))
    for group in np.nonzero(group_sizes >= MATMUL_GROUP)[0]:
        end = group_starts[group] + group_sizes[group]
        for first in range(group_starts[group], end, rows_per_product):
            rows = slice(first, min(first + rows_per_product, end))
            np.greater(points[rows] @ pre[group], 0, out=codes[rows])
    pieces_small = np.nonzero(group_sizes[parent] < MATMUL_GROUP)[0]
    repeats = crossing_lines.count[parent[pieces_small]]
    piece = np.repeat(pieces_small, repeats)
    node = crossing_lines.node[np.repeat(crossing_lines.first[parent[pieces_small]], repeats) + _ranks_within(repeats)]
    maps = pre[parent[piece], :, node]
    codes[piece, node] = np.einsum("ij,ij->i", maps, points[piece]) > 0
    return codes


def _ranks_within(counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., c-1 for each count c, concatenated."""
    return np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)


def lines_near_boxes(pre: np.ndarray, box: np.ndarray, frame: Frame, slack: float = 1.0,
                     above: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
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
    above : bool ndarray, shape (n_parents, n_nodes), optional
        Filled with whether each map is positive at its box centre.

    Returns
    -------
    parent, node : ndarray of int64, shape (n_pairs,)
        In row-major (parent, node) order.
    """
    parent, node, _, _ = _near_lines(pre, box, frame, slack, above)
    return parent, node


def _near_lines(pre: np.ndarray, box: np.ndarray, frame: Frame, slack: float,
                above: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`lines_near_boxes`, also returning the pairs' lines (n_pairs, 3) and their tolerances (n_pairs,)."""
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
        if above is not None:
            np.greater(centre_value, 0, out=above[rows])
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
    tolerance = line_tolerance(lines, frame)
    near = _box_reach(lines, box[parent], slack * tolerance)
    return parent[near], node[near], lines[near], tolerance[near]


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
    n_parents, _, n_nodes = pre.shape
    above = np.empty((n_parents, n_nodes), dtype=bool)
    near_parent, near_node, maps, tolerance = _near_lines(pre, parents.bounding_boxes(), frame, 1.0, above)
    counts = parents.counts[near_parent]
    pair = np.repeat(np.arange(len(near_parent)), counts)
    vertex = parents.vertices[np.repeat(parents.starts[near_parent], counts) + _ranks_within(counts)]
    values = maps[pair, 0] + maps[pair, 1] * vertex[:, 0] + maps[pair, 2] * vertex[:, 1]
    pair_tolerance = tolerance[pair]
    starts = np.cumsum(counts) - counts
    some_above = np.logical_or.reduceat(values > pair_tolerance, starts) if len(pair) else np.zeros(0, bool)
    some_below = np.logical_or.reduceat(values < -pair_tolerance, starts) if len(pair) else np.zeros(0, bool)
    above[near_parent, near_node] = some_above & ~some_below
    crossing = some_above & some_below
    unresolved = _count_unresolved(values, rounding_tolerance(maps, frame)[pair], some_above, some_below, starts)
    return _CrossingLines(pre, near_parent[crossing], near_node[crossing], unresolved), above


def _count_unresolved(values, rounding, some_above, some_below, starts) -> int:
    """Polygons that a line leaves uncut although some vertex lies beyond round-off on the side that counts as
    "on the line": the line passes within the resolution of a corner (see :class:`ResolutionWarning`)."""
    if not len(values):
        return 0
    beyond_below = np.logical_or.reduceat(values < -rounding, starts)
    beyond_above = np.logical_or.reduceat(values > rounding, starts)
    return int(np.count_nonzero(some_above & ~some_below & beyond_below | some_below & ~some_above & beyond_above))


class _CrossingLines:
    """The lines crossing each parent region, in node order (line ``j`` of a parent is its ``j``-th such node).

    Built from the crossing (parent, node) pairs in row-major order.
    """

    def __init__(self, pre: np.ndarray, parent: np.ndarray, node: np.ndarray, unresolved: int = 0):
        self.pre, self.node = pre, node
        self.unresolved = unresolved  # polygons a line came within the resolution of without cutting them
        self.count = np.bincount(parent, minlength=len(pre))
        self.first = np.cumsum(self.count) - self.count

    def lines(self, parent: np.ndarray, index) -> np.ndarray:
        """The ``index``-th line (one index, or one per region) crossing each of the regions ``parent``, (n, 3)."""
        return self.pre[parent, :, self.node[self.first[parent] + index]]

    def of_parent(self, parent: int) -> np.ndarray:
        """All lines crossing region ``parent``, shape (k, 3)."""
        return self.pre[parent][:, self.node[self.first[parent]:self.first[parent] + self.count[parent]]].T


def cut_by_layer(parents: Polygons, pre: np.ndarray, frame: Frame, max_regions: int, layer_index: int,
                 room: int | None = None):
    """Cut every parent region by the zero lines of this layer's nodes that cross it.

    The lines crossing each parent are found by vectorized tests (:func:`_crossing_lines`); the compiled loop
    :func:`~spline_utils.engine.cut_kernel.cut_parents` then cuts each parent's pieces by them in node order.

    Returns the pieces (grouped by parent, parents in order), each piece's parent index and its layer code. Raises
    :class:`PartitionTooLarge` past ``max_regions`` pieces, and :class:`OutOfRoom` past ``room`` pieces.
    """
    room = max_regions if room is None else room
    crossing_lines, above = _crossing_lines(parents, pre, frame)
    check_growth(parents, crossing_lines.count, crossing_lines.of_parent, frame, max_regions, layer_index)
    lines = crossing_lines.lines(np.repeat(np.arange(len(parents)), crossing_lines.count),
                                 _ranks_within(crossing_lines.count))
    vertices, counts, parent, unresolved, status = cut_parents(
        parents.vertices, parents.starts, parents.counts, crossing_lines.first, crossing_lines.count,
        np.ascontiguousarray(lines), line_tolerance(lines, frame), rounding_tolerance(lines, frame),
        max_regions, room)
    if status == CUT_PAST_MAX_REGIONS:
        raise too_large(layer_index, f"already has more than max_regions={max_regions} regions")
    if status == CUT_PAST_ROOM:
        raise OutOfRoom()
    unresolved += crossing_lines.unresolved
    if unresolved:
        warnings.warn(f"hidden layer {layer_index}: {unresolved} times a node's line came within the "
                      f"engine's resolution ({RELATIVE_TOLERANCE:g} of the domain's half-width, {frame.half:.3g}) of "
                      "a region's corner without measurably crossing the region: it passes through the corner, or "
                      "it cuts off a sliver thinner than that, which is merged into its neighbour; partition a "
                      "smaller rectangle to resolve it", ResolutionWarning, stacklevel=2)
    pieces = Polygons(vertices, counts)
    return pieces, parent, _layer_codes(pieces, parent, crossing_lines, above)
