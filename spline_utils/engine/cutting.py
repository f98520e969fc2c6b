"""Cutting convex regions by the zero lines of a layer's nodes: the core of the exact partition engine.

The compiled loops of :mod:`~spline_utils.engine.cut_kernel` find the lines that cross each parent region (a
bounding-box test first, then the signs at the region's vertices), cut each parent by them and read each piece's layer
code at a point inside it; this module checks the caps around them. The arrangement does not depend on the order of
the cuts. :func:`lines_near_boxes` is the vectorized nearness test the spline segments use.
"""
from __future__ import annotations

import warnings

import numpy as np

from spline_utils.engine.cut_kernel import (CUT_DONE, CUT_PAST_MAX_REGIONS, CUT_PAST_ROOM, crossing_pairs,
                                           cut_parents, lines_left_on_pieces, piece_codes)
from spline_utils.engine.kernel_threads import run_blocks, work_blocks
from spline_utils.engine.polygons import Polygons
from spline_utils.engine.region_bound import OutOfRoom, check_growth, too_large
from spline_utils.engine.thread_pools import kernel_threads
from spline_utils.engine.tolerance import (RELATIVE_TOLERANCE, ROUNDING_TOLERANCE, Frame, ResolutionWarning,
                                          line_tolerance, rounding_tolerance)

PAIRS_PER_CHUNK = 2**16  # (parent, node) pairs whose nearness is tested in one vectorized step (cache-sized)
# the least work a thread of the compiled loops gets (about a millisecond each; kernel_threads.py)
BLOCK_PAIRS = 2**18  # (parent, node) pairs tested for crossing
BLOCK_LINES = 2**12  # lines cut into parents
BLOCK_CODE_LINES = 2**16  # lines read at pieces' vertex means
SPLIT_LEAST_LINES, SPLIT_LINES = 64, 16  # a parent crossed by 64 lines or more: its pieces after 16 cut on their own


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
    n_parents, _, n_nodes = pre.shape
    starts, counts = parents.starts, parents.counts

    def block(start: int, stop: int):
        return crossing_pairs(pre[start:stop], parents.vertices, starts[start:stop], counts[start:stop],
                              frame.centre_x, frame.centre_y, frame.half)

    blocks = work_blocks(np.full(n_parents, n_nodes), kernel_threads(), BLOCK_PAIRS)
    results = run_blocks(block, blocks)
    above = _joined([result[0] for result in results])
    parent = _joined([result[1] + start for result, (start, _) in zip(results, blocks)])
    node = _joined([result[2] for result in results])
    return _CrossingLines(pre, parent, node, sum(result[3] for result in results)), above


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


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
    tolerance = line_tolerance(lines, frame)
    vertices, counts, parent, unresolved, status, split = _cut_parents(
        parents, crossing_lines, lines, tolerance, rounding_tolerance(lines, frame), max_regions, room)
    if status == CUT_PAST_MAX_REGIONS:
        raise too_large(layer_index, f"already has more than max_regions={max_regions} regions")
    if status == CUT_PAST_ROOM:
        raise OutOfRoom()
    pieces = Polygons(vertices, counts)
    packed_above = np.packbits(above, axis=1)
    if split is None:
        codes = _piece_codes(pieces, parent, packed_above, crossing_lines.first, crossing_lines.count, lines,
                             crossing_lines.node)
    else:  # read inside the first pieces: only the lines that do not leave a first piece on one side
        work, work_owner, piece_work = split
        work_above, left, left_first, left_count = lines_left_on_pieces(
            work.vertices, work.starts, work.counts, work_owner, packed_above, crossing_lines.first,
            crossing_lines.count, lines, crossing_lines.node, tolerance)
        codes = _piece_codes(pieces, piece_work, work_above, left_first, left_count, lines[left],
                             crossing_lines.node[left])
    return pieces, parent, codes, unresolved + crossing_lines.unresolved


def _cut_parents(parents: Polygons, crossing_lines: "_CrossingLines", lines: np.ndarray, tolerance: np.ndarray,
                 rounding: np.ndarray, max_regions: int, room: int):
    """:func:`~spline_utils.engine.cut_kernel.cut_parents` on every parent, in threads; returns its five results and
    the split: ``None``, or the parents the pieces were cut from (:class:`Polygons`), each one's parent, and each
    piece's.

    A parent crossed by :data:`SPLIT_LEAST_LINES` lines or more (the first layer's one parent, the domain) is cut by
    its first :data:`SPLIT_LINES` lines first, and each piece then by the rest as a parent of its own: the same cuts in
    the same order on each piece, so the same pieces, listed a first piece's at a time. Each line is then tested
    against the pieces of one first piece rather than all of the parent's (the tests grow as lines x pieces: 0.1 s
    of the paper CNN's canvas), and the first pieces share the threads.
    """
    first, count = crossing_lines.first, crossing_lines.count
    large = count >= SPLIT_LEAST_LINES
    if not large.any():
        return *_cut_in_blocks(parents, first, count, lines, tolerance, rounding, max_regions, room), None
    large_parents = parents.subset(np.flatnonzero(large))
    vertices, piece_counts, piece_parent, unresolved, status = cut_parents(
        large_parents.vertices, large_parents.starts, large_parents.counts, first[large],
        np.full(len(large_parents), SPLIT_LINES), lines, tolerance, rounding, max_regions, room,
        len(parents) - len(large_parents))
    if status != CUT_DONE:
        return None, None, None, unresolved, status, None
    owner = np.r_[np.flatnonzero(~large), np.flatnonzero(large)[piece_parent]]
    order = np.argsort(owner, kind="stable")  # each first piece where its parent stood
    work = Polygons.concatenate([parents.subset(np.flatnonzero(~large)), Polygons(vertices, piece_counts)]
                                ).subset(order)
    work_first = np.r_[first[~large], first[large][piece_parent] + SPLIT_LINES][order]
    work_count = np.r_[count[~large], count[large][piece_parent] - SPLIT_LINES][order]
    vertices, piece_counts, piece_parent, more_unresolved, status = _cut_in_blocks(
        work, work_first, work_count, lines, tolerance, rounding, max_regions, room)
    if status != CUT_DONE:
        return None, None, None, unresolved + more_unresolved, status, None
    owner = owner[order]
    return vertices, piece_counts, owner[piece_parent], unresolved + more_unresolved, CUT_DONE, \
        (work, owner, piece_parent)


def _cut_in_blocks(parents: Polygons, first: np.ndarray, count: np.ndarray, lines: np.ndarray, tolerance: np.ndarray,
                   rounding: np.ndarray, max_regions: int, room: int):
    """:func:`~spline_utils.engine.cut_kernel.cut_parents` on blocks of parents in threads, joined in order.

    Each block counts the other blocks' parents against the caps, so a block that stops early has found the whole
    layer past them; when all finish, the joined count decides, and the status names the smaller cap, as one call
    over all parents would.
    """
    starts, counts, n_parents = parents.starts, parents.counts, len(parents)

    def block(start: int, stop: int):
        first_vertex = int(starts[start]) if stop > start else 0
        last_vertex = int(starts[stop - 1] + counts[stop - 1]) if stop > start else 0
        return cut_parents(parents.vertices[first_vertex:last_vertex], starts[start:stop] - first_vertex,
                           counts[start:stop], first[start:stop], count[start:stop], lines, tolerance, rounding,
                           max_regions, room, n_parents - (stop - start))

    blocks = work_blocks(count + 1, kernel_threads(), BLOCK_LINES)
    results = run_blocks(block, blocks)
    if len(results) == 1:
        return results[0]
    unresolved = sum(result[3] for result in results)
    n_pieces = sum(len(result[1]) for result in results)
    if any(result[4] != CUT_DONE for result in results) or n_pieces > min(max_regions, room):
        status = CUT_PAST_MAX_REGIONS if max_regions <= room else CUT_PAST_ROOM
        return None, None, None, unresolved, status
    return (np.concatenate([result[0] for result in results]), np.concatenate([result[1] for result in results]),
            np.concatenate([result[2] + start for result, (start, _) in zip(results, blocks)]), unresolved, CUT_DONE)


def _piece_codes(pieces: Polygons, parent: np.ndarray, packed_above: np.ndarray, first: np.ndarray,
                 count: np.ndarray, lines: np.ndarray, node: np.ndarray) -> np.ndarray:
    """:func:`~spline_utils.engine.cut_kernel.piece_codes` on blocks of pieces in threads, joined in order."""
    starts, counts = pieces.starts, pieces.counts

    def block(start: int, stop: int) -> np.ndarray:
        return piece_codes(pieces.vertices, starts[start:stop], counts[start:stop], parent[start:stop], packed_above,
                           first, count, lines, node)

    return _joined(run_blocks(block, work_blocks(count[parent] + 1, kernel_threads(), BLOCK_CODE_LINES)))


def warn_unresolved(layer_index: int, unresolved: int, frame: Frame) -> None:
    """The :class:`ResolutionWarning` for ``unresolved`` places in hidden layer ``layer_index`` (none when 0)."""
    if unresolved:
        warnings.warn(f"hidden layer {layer_index}: {unresolved} times a node's line came within the "
                      f"engine's resolution ({RELATIVE_TOLERANCE:g} of the domain's half-width, {frame.half:.3g}) of "
                      "a region's corner without measurably crossing the region: it passes through the corner, or "
                      "it cuts off a sliver thinner than that, which is merged into its neighbour; partition a "
                      "smaller rectangle to resolve it", ResolutionWarning, stacklevel=2)
