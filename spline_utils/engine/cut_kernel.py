"""The compiled inner loop of the engine: cut convex regions by the lines that cross them, one region at a time.

numpy cannot express "cut this piece, then cut its halves by the next line" without a Python step per line and
array bookkeeping per step; on small networks that bookkeeping was most of the run time. This loop, compiled with
numba, takes each parent region, cuts every current piece by each crossing line in node order (a bounding-box test
first, then the sign of the line at the piece's vertices), and writes the final pieces out parent after parent.

:func:`crossing_pairs` finds the lines that cross each parent in the same way, in one pass over the layer's maps.

The geometry is the engine's, decision for decision: a vertex is on a line when ``|c + a1 x + a2 y| <= tolerance``
(evaluated in that order, in float64), a piece is cut only when it has vertices strictly on both sides, on-line
vertices go to both halves, and crossings of an edge are interpolated as ``v + t (w - v)`` with
``t = value(v) / (value(v) - value(w))``.
"""
from __future__ import annotations

import numba
import numpy as np

from spline_utils.engine.tolerance import RELATIVE_TOLERANCE, ROUNDING_TOLERANCE

#: Returned ``status``: all parents cut; past ``max_regions`` pieces; past ``room`` pieces.
CUT_DONE, CUT_PAST_MAX_REGIONS, CUT_PAST_ROOM = 0, 1, 2


@numba.njit(cache=True, nogil=True)
def _grown(array, needed):
    """``array`` itself if it has ``needed`` rows, else a copy with at least twice as many rows."""
    if needed <= array.shape[0]:
        return array
    grown = np.empty((max(needed, 2 * array.shape[0]),) + array.shape[1:], dtype=array.dtype)
    grown[:array.shape[0]] = array
    return grown


@numba.njit(cache=True, nogil=True)
def _box(vertices, start, count, box, index):
    """Write the bounding box ``(xmin, xmax, ymin, ymax)`` of ``vertices[start:start + count]`` to ``box[index]``."""
    xmin, xmax = vertices[start, 0], vertices[start, 0]
    ymin, ymax = vertices[start, 1], vertices[start, 1]
    for k in range(start + 1, start + count):
        x, y = vertices[k, 0], vertices[k, 1]
        xmin, xmax = min(xmin, x), max(xmax, x)
        ymin, ymax = min(ymin, y), max(ymax, y)
    box[index, 0], box[index, 1], box[index, 2], box[index, 3] = xmin, xmax, ymin, ymax


@numba.njit(cache=True, nogil=True)
def cut_parents(vertices, starts, counts, line_first, line_count, lines, tolerance, rounding, max_regions, room,
                other_regions=0):
    """Cut each parent polygon by its crossing lines.

    Parameters
    ----------
    vertices : float64 ndarray, shape (n_vertices, 2)
        The parents' vertices, counter-clockwise, parent after parent.
    starts, counts : int64 ndarray, shape (n_parents,)
        Each parent's first vertex and number of vertices.
    line_first, line_count : int64 ndarray, shape (n_parents,)
        Each parent's lines are ``lines[line_first[p]:line_first[p] + line_count[p]]``, cut in that order.
    lines : float64 ndarray, shape (n_lines, 3)
        ``(c, a1, a2)``: the line ``c + a1 x + a2 y = 0``.
    tolerance, rounding : float64 ndarray, shape (n_lines,)
        Each line's on-line tolerance and the round-off part of it (see ``tolerance.py``).
    max_regions, room : int
        Stop once more pieces than either exist (all parents, cut or not, count as pieces).
    other_regions : int
        Regions counted against ``max_regions`` and ``room`` besides these parents' pieces (the other parents',
        when the parents are cut in blocks).

    Returns
    -------
    out_vertices : float64 ndarray, shape (m, 2)
    out_counts, out_parent : int64 ndarray, shape (n_pieces,)
        The pieces, grouped by parent in parent order, and each piece's parent.
    unresolved : int
        Pieces that a line left uncut although a vertex lies beyond round-off on the side counted as on the line.
    status : int
        :data:`CUT_DONE`, or :data:`CUT_PAST_MAX_REGIONS` / :data:`CUT_PAST_ROOM` when stopped early.
    """
    n_parents = starts.shape[0]
    out_vertices = np.empty((max(16, 2 * vertices.shape[0]), 2))
    out_counts = np.empty(max(16, 2 * n_parents), dtype=np.int64)
    out_parent = np.empty(max(16, 2 * n_parents), dtype=np.int64)
    n_out, n_out_vertices = 0, 0
    # one parent's pieces while it is cut: an append-only arena of vertices, pieces marked dead once cut
    arena = np.empty((256, 2))
    piece_start = np.empty(64, dtype=np.int64)
    piece_count = np.empty(64, dtype=np.int64)
    piece_alive = np.empty(64, dtype=np.bool_)
    piece_box = np.empty((64, 4))
    values = np.empty(64)
    sides = np.empty(64, dtype=np.int8)
    unresolved, n_alive = 0, n_parents + other_regions
    for parent in range(n_parents):
        count = counts[parent]
        arena = _grown(arena, count)
        arena[:count] = vertices[starts[parent]:starts[parent] + count]
        piece_start[0], piece_count[0], piece_alive[0] = 0, count, True
        _box(arena, 0, count, piece_box, 0)
        n_pieces, arena_size = 1, count
        for line in range(line_first[parent], line_first[parent] + line_count[parent]):
            c, a1, a2 = lines[line, 0], lines[line, 1], lines[line, 2]
            tol, rnd = tolerance[line], rounding[line]
            for piece in range(n_pieces):  # the halves this line makes are not cut by it again
                if not piece_alive[piece]:
                    continue
                xmin, xmax, ymin, ymax = piece_box[piece, 0], piece_box[piece, 1], piece_box[piece, 2], \
                    piece_box[piece, 3]
                centre = c + a1 * (xmin + xmax) / 2 + a2 * (ymin + ymax) / 2
                if abs(centre) > abs(a1) * (xmax - xmin) / 2 + abs(a2) * (ymax - ymin) / 2 + tol:
                    continue
                start, size = piece_start[piece], piece_count[piece]
                values = _grown(values, size)
                sides = _grown(sides, size)
                some_above, some_below, on_line = False, False, False
                beyond_above, beyond_below = False, False
                for k in range(size):
                    value = c + a1 * arena[start + k, 0] + a2 * arena[start + k, 1]
                    values[k] = value
                    if value > tol:
                        sides[k], some_above = 1, True
                    elif value < -tol:
                        sides[k], some_below = -1, True
                    else:
                        sides[k], on_line = 0, True
                    beyond_above |= value > rnd
                    beyond_below |= value < -rnd
                if not (some_above and some_below):
                    if on_line and (some_above and beyond_below or some_below and beyond_above):
                        unresolved += 1
                    continue
                n_alive += 1
                if n_alive > max_regions:
                    return out_vertices[:0], out_counts[:0], out_parent[:0], unresolved, CUT_PAST_MAX_REGIONS
                if n_alive > room:
                    return out_vertices[:0], out_counts[:0], out_parent[:0], unresolved, CUT_PAST_ROOM
                # both halves get at most size + 2 vertices each
                arena = _grown(arena, arena_size + 2 * size + 4)
                piece_start = _grown(piece_start, n_pieces + 2)
                piece_count = _grown(piece_count, n_pieces + 2)
                piece_alive = _grown(piece_alive, n_pieces + 2)
                piece_box = _grown(piece_box, n_pieces + 2)
                piece_alive[piece] = False
                for keep in (1, -1):
                    first = arena_size
                    for k in range(size):
                        following = k + 1 if k + 1 < size else 0
                        if sides[k] * keep >= 0:
                            arena[arena_size, 0], arena[arena_size, 1] = arena[start + k, 0], arena[start + k, 1]
                            arena_size += 1
                        if sides[k] * sides[following] < 0:
                            t = values[k] / (values[k] - values[following])
                            x, y = arena[start + k, 0], arena[start + k, 1]
                            arena[arena_size, 0] = x + t * (arena[start + following, 0] - x)
                            arena[arena_size, 1] = y + t * (arena[start + following, 1] - y)
                            arena_size += 1
                    piece_start[n_pieces], piece_count[n_pieces] = first, arena_size - first
                    piece_alive[n_pieces] = True
                    _box(arena, first, arena_size - first, piece_box, n_pieces)
                    n_pieces += 1
        for piece in range(n_pieces):
            if not piece_alive[piece]:
                continue
            start, size = piece_start[piece], piece_count[piece]
            out_vertices = _grown(out_vertices, n_out_vertices + size)
            out_counts = _grown(out_counts, n_out + 1)
            out_parent = _grown(out_parent, n_out + 1)
            out_vertices[n_out_vertices:n_out_vertices + size] = arena[start:start + size]
            out_counts[n_out], out_parent[n_out] = size, parent
            n_out_vertices += size
            n_out += 1
    return out_vertices[:n_out_vertices].copy(), out_counts[:n_out].copy(), out_parent[:n_out].copy(), unresolved, \
        CUT_DONE


@numba.njit(cache=True, nogil=True)
def crossing_pairs(pre, vertices, starts, counts, centre_x, centre_y, half):
    """Which node lines cut each parent region's interior, and on which side the others leave it.

    A line farther from the parent's bounding-box centre than its variation over the box plus its tolerance (see
    :func:`~spline_utils.engine.tolerance.line_tolerance`, for the frame ``centre_x, centre_y, half``) leaves the
    parent on the side of that centre; otherwise the signs at the parent's vertices decide.

    Parameters
    ----------
    pre : float64 ndarray, shape (n_parents, 3, n_nodes)
        Each node's affine map on each parent (rows offset, d/dx, d/dy).
    vertices : float64 ndarray, shape (n_vertices, 2)
    starts, counts : int64 ndarray, shape (n_parents,)

    Returns
    -------
    above : bool ndarray, shape (n_parents, n_nodes)
        The node is active on the whole parent (for the lines that do not cross it).
    pair_parent, pair_node : int64 ndarray, shape (n_pairs,)
        The crossing (parent, node) pairs, in row-major order.
    unresolved : int
        Parents a line left uncut although a vertex lies beyond round-off on the side counted as on the line.
    """
    n_parents, _, n_nodes = pre.shape
    relative, rounding = RELATIVE_TOLERANCE, ROUNDING_TOLERANCE
    weight_x = relative * half + rounding * (abs(centre_x) + half)
    weight_y = relative * half + rounding * (abs(centre_y) + half)
    reach_x, reach_y = abs(centre_x) + half, abs(centre_y) + half
    above = np.empty((n_parents, n_nodes), dtype=np.bool_)
    pair_parent = np.empty(max(16, n_parents), dtype=np.int64)
    pair_node = np.empty(max(16, n_parents), dtype=np.int64)
    box = np.empty((1, 4))
    n_pairs, unresolved = 0, 0
    for parent in range(n_parents):
        start, count = starts[parent], counts[parent]
        _box(vertices, start, count, box, 0)
        box_x, box_y = (box[0, 0] + box[0, 1]) / 2, (box[0, 2] + box[0, 3]) / 2
        extent_x, extent_y = (box[0, 1] - box[0, 0]) / 2, (box[0, 3] - box[0, 2]) / 2
        for node in range(n_nodes):
            c, a1, a2 = pre[parent, 0, node], pre[parent, 1, node], pre[parent, 2, node]
            centre_value = c + a1 * box_x + a2 * box_y
            tol = relative * abs(c + a1 * centre_x + a2 * centre_y) + rounding * abs(c) + abs(a1) * weight_x + \
                abs(a2) * weight_y
            if abs(centre_value) > abs(a1) * extent_x + abs(a2) * extent_y + tol:
                above[parent, node] = centre_value > 0
                continue
            rnd = rounding * (abs(c) + abs(a1) * reach_x + abs(a2) * reach_y)
            some_above, some_below, beyond_above, beyond_below = False, False, False, False
            for k in range(start, start + count):
                value = c + a1 * vertices[k, 0] + a2 * vertices[k, 1]
                some_above |= value > tol
                some_below |= value < -tol
                beyond_above |= value > rnd
                beyond_below |= value < -rnd
            above[parent, node] = some_above and not some_below
            if some_above and some_below:
                pair_parent = _grown(pair_parent, n_pairs + 1)
                pair_node = _grown(pair_node, n_pairs + 1)
                pair_parent[n_pairs], pair_node[n_pairs] = parent, node
                n_pairs += 1
            elif some_above and beyond_below or some_below and beyond_above:
                unresolved += 1
    return above, pair_parent[:n_pairs].copy(), pair_node[:n_pairs].copy(), unresolved


@numba.njit(cache=True, nogil=True)
def piece_codes(vertices, starts, counts, parent, above, line_first, line_count, lines, line_node):
    """Each piece's code for the layer's nodes, read at its vertex mean (strictly inside it), packed 8 nodes a byte.

    ``above`` is the parents' codes packed the same way (``np.packbits(codes, axis=1)``: node ``k`` is bit
    ``7 - k % 8`` of byte ``k // 8``). A node whose line does not cross the piece's parent keeps the parent's side;
    the lines that do, the parent's ``lines[line_first[p]:line_first[p] + line_count[p]]`` of nodes ``line_node``,
    are evaluated there.

    Returns a uint8 ndarray of shape (n_pieces, n_bytes), packed as ``above``.
    """
    codes = np.empty((len(counts), above.shape[1]), dtype=np.uint8)
    for piece in range(len(counts)):
        owner = parent[piece]
        codes[piece] = above[owner]
        mean_x, mean_y = 0.0, 0.0
        for k in range(starts[piece], starts[piece] + counts[piece]):
            mean_x += vertices[k, 0]
            mean_y += vertices[k, 1]
        mean_x /= counts[piece]
        mean_y /= counts[piece]
        for line in range(line_first[owner], line_first[owner] + line_count[owner]):
            node = line_node[line]
            bit = 128 >> (node & 7)
            if lines[line, 0] + lines[line, 1] * mean_x + lines[line, 2] * mean_y > 0:
                codes[piece, node >> 3] |= np.uint8(bit)
            else:
                codes[piece, node >> 3] &= np.uint8(255 - bit)
    return codes


@numba.njit(cache=True, nogil=True)
def lines_left_on_pieces(vertices, starts, counts, owner, above, line_first, line_count, lines, line_node, tolerance):
    """Which of its parent's lines leave each piece strictly on one side, for codes read inside the piece.

    A line farther than its tolerance from every vertex of a convex piece has one sign on all of it, so every point
    inside (a smaller piece's vertex mean) reads that side; only the other lines need evaluating there.

    Parameters
    ----------
    vertices : float64 ndarray, shape (n_vertices, 2)
    starts, counts, owner : int64 ndarray, shape (n_pieces,)
        Each piece's vertices and its parent.
    above : uint8 ndarray, shape (n_parents, n_bytes)
        The parents' codes, packed as in :func:`piece_codes`.
    line_first, line_count : int64 ndarray, shape (n_parents,)
    lines : float64 ndarray, shape (n_lines, 3)
    line_node : int64 ndarray, shape (n_lines,)
    tolerance : float64 ndarray, shape (n_lines,)
        Each line's on-line tolerance.

    Returns
    -------
    piece_above : uint8 ndarray, shape (n_pieces, n_bytes)
        The parent's code with the bits of the lines that leave the piece on one side set to that side.
    left : int64 ndarray, shape (n_left,)
        The other lines (rows of ``lines``), piece after piece, in the parent's order.
    left_first, left_count : int64 ndarray, shape (n_pieces,)
        Each piece's share of ``left``.
    """
    n_pieces = len(counts)
    piece_above = np.empty((n_pieces, above.shape[1]), dtype=np.uint8)
    left = np.empty(max(16, n_pieces), dtype=np.int64)
    left_first, left_count = np.empty(n_pieces, dtype=np.int64), np.zeros(n_pieces, dtype=np.int64)
    n_left = 0
    for piece in range(n_pieces):
        parent = owner[piece]
        piece_above[piece] = above[parent]
        left_first[piece] = n_left
        for line in range(line_first[parent], line_first[parent] + line_count[parent]):
            c, a1, a2, tol = lines[line, 0], lines[line, 1], lines[line, 2], tolerance[line]
            all_above, all_below = True, True
            for k in range(starts[piece], starts[piece] + counts[piece]):
                value = c + a1 * vertices[k, 0] + a2 * vertices[k, 1]
                all_above &= value > tol
                all_below &= value < -tol
            node = line_node[line]
            bit = 128 >> (node & 7)
            if all_above:
                piece_above[piece, node >> 3] |= np.uint8(bit)
            elif all_below:
                piece_above[piece, node >> 3] &= np.uint8(255 - bit)
            else:
                left = _grown(left, n_left + 1)
                left[n_left] = line
                n_left += 1
        left_count[piece] = n_left - left_first[piece]
    return piece_above, left[:n_left].copy(), left_first, left_count
