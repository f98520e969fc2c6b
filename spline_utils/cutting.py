"""Cutting convex regions by the zero lines of a layer's nodes: the core of the exact partition engine.

Round ``j`` cuts every live piece by the ``j``-th node line that crosses its parent region, vectorized over pieces,
so the Python loop runs over the largest number of lines crossing one parent, never over regions. A bounding-box
test keeps each round to the pieces its lines can reach.
"""
from __future__ import annotations

import math

import numpy as np

from .polygons import PolygonPool, Polygons, cut, side_of_line
from .tolerance import Frame, line_tolerance

ROWS_PER_CHUNK = 16384  # regions whose codes are computed in one matrix product
MATMUL_GROUP = 64
MANY_LINES = 128  # parents crossed by fewer lines reach the region cap within seconds in the cutting rounds
PAIR_BUDGET = 2**23  # line pairs the lower bound on the region count may examine per layer
PAIRS_PER_STEP = 2**18  # line pairs examined in one vectorized step (bounds the temporary memory)
MERGE_DISTANCE = 1e-8  # intersections closer than this fraction of the domain's size are counted as one


class PartitionTooLarge(RuntimeError):
    """The partition would exceed the region cap or the memory cap given to :func:`spline_utils.partition2d`."""


def _layer_codes(pieces: Polygons, parent: np.ndarray, pre: np.ndarray, crossing: np.ndarray,
                 above: np.ndarray) -> np.ndarray:
    """Each piece's code for this layer's nodes, at its vertex mean (strictly inside it).

    Parents cut into many pieces evaluate all their nodes with one matrix product; for the others only the lines
    that cross the parent are evaluated, the rest keep the parent's side (``above``).
    """
    codes = above[parent]
    points = np.concatenate([np.ones((len(parent), 1)), pieces.vertex_means()], axis=1)
    group_sizes = np.bincount(parent, minlength=len(pre))
    group_starts = np.cumsum(group_sizes) - group_sizes
    for group in np.nonzero(group_sizes >= MATMUL_GROUP)[0]:
        for first in range(group_starts[group], group_starts[group] + group_sizes[group], ROWS_PER_CHUNK):
            rows = slice(first, min(first + ROWS_PER_CHUNK, group_starts[group] + group_sizes[group]))
            codes[rows] = points[rows] @ pre[group] > 0
    small = group_sizes[parent] < MATMUL_GROUP
    pieces_small = np.nonzero(small)[0]
    lines_per_parent = crossing.sum(axis=1)
    _, line_node = np.nonzero(crossing)
    first_line = np.cumsum(lines_per_parent) - lines_per_parent
    repeats = lines_per_parent[parent[pieces_small]]
    piece = np.repeat(pieces_small, repeats)
    node = line_node[np.repeat(first_line[parent[pieces_small]], repeats) + _ranks_within(repeats)]
    maps = pre[parent[piece], :, node]
    codes[piece, node] = np.einsum("ij,ij->i", maps, points[piece]) > 0
    return codes


def _ranks_within(counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., c-1 for each count c, concatenated."""
    return np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)


def _crossing_lines(parents: Polygons, pre: np.ndarray, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
    """Which node lines cut each parent region, and on which side the others leave it.

    Returns
    -------
    crossing : bool (n_parents, n_nodes)
        Node k's zero line cuts parent region p's interior.
    above : bool (n_parents, n_nodes)
        Some vertex is strictly above the line and none strictly below: the node is active on the whole region.
    """
    n_parents, _, n_nodes = pre.shape
    box = parents.bounding_boxes()
    centre = np.stack([(box[:, 0] + box[:, 1]) / 2, (box[:, 2] + box[:, 3]) / 2], axis=1)
    half = np.stack([(box[:, 1] - box[:, 0]) / 2, (box[:, 3] - box[:, 2]) / 2], axis=1)
    tolerance = line_tolerance(np.moveaxis(pre, 1, 2), frame)
    centre_value = pre[:, 0] + pre[:, 1] * centre[:, :1] + pre[:, 2] * centre[:, 1:]
    reach = np.abs(pre[:, 1]) * half[:, :1] + np.abs(pre[:, 2]) * half[:, 1:]
    # a line farther from the box centre than the box reaches leaves the whole region on one side
    near_parent, near_node = np.nonzero(np.abs(centre_value) <= reach + tolerance)
    above = centre_value > 0
    counts = parents.counts[near_parent]
    pair = np.repeat(np.arange(len(near_parent)), counts)
    vertex = parents.vertices[np.repeat(parents.starts[near_parent], counts) + _ranks_within(counts)]
    maps = pre[near_parent, :, near_node]
    values = maps[pair, 0] + maps[pair, 1] * vertex[:, 0] + maps[pair, 2] * vertex[:, 1]
    pair_tolerance = tolerance[near_parent, near_node][pair]
    starts = np.cumsum(counts) - counts
    some_above = np.add.reduceat(values > pair_tolerance, starts) > 0 if len(pair) else np.zeros(0, bool)
    some_below = np.add.reduceat(values < -pair_tolerance, starts) > 0 if len(pair) else np.zeros(0, bool)
    crossing = np.zeros((n_parents, n_nodes), dtype=bool)
    crossing[near_parent, near_node] = some_above & some_below
    above[near_parent, near_node] = some_above & ~some_below
    return crossing, above


def cut_by_layer(parents: Polygons, pre: np.ndarray, frame: Frame, max_regions: int, layer_index: int):
    """Cut every parent region by the zero lines of this layer's nodes that cross it.

    Round ``j`` cuts every live piece by the ``j``-th line crossing its parent. A bounding-box test first discards
    the pieces the line cannot reach, so a round only touches the few pieces near its lines.

    Returns the pieces (grouped by parent, parents in order), each piece's parent index and its layer code.
    """
    crossing, above = _crossing_lines(parents, pre, frame)
    _check_growth(parents, pre, crossing, frame, max_regions, layer_index)
    _, line_node = np.nonzero(crossing)
    lines_per_parent = crossing.sum(axis=1)
    first_line = np.cumsum(lines_per_parent) - lines_per_parent
    pool = PolygonPool(parents, np.arange(len(parents)))
    active = np.nonzero(lines_per_parent > 0)[0]
    n_alive, round_index = len(parents), 0
    while len(active):
        parent = pool.parent[active]
        lines = pre[parent, :, line_node[first_line[parent] + round_index]]
        tolerance = line_tolerance(lines, frame)
        box = pool.box[active]
        centre_value = lines[:, 0] + lines[:, 1] * (box[:, 0] + box[:, 1]) / 2 + lines[:, 2] * (box[:, 2] + box[:, 3]) / 2
        reach = np.abs(lines[:, 1]) * (box[:, 1] - box[:, 0]) / 2 + np.abs(lines[:, 2]) * (box[:, 3] - box[:, 2]) / 2
        near = np.abs(centre_value) < reach + tolerance
        candidates = active[near]
        split = np.zeros(len(active), dtype=bool)
        children = np.zeros(0, dtype=np.int64)
        if len(candidates):
            polygons = pool.get(candidates)
            owner = polygons.owner
            near_lines = lines[near]
            values = near_lines[owner, 0] + near_lines[owner, 1] * polygons.vertices[:, 0] + \
                near_lines[owner, 2] * polygons.vertices[:, 1]
            vertex_tolerance = tolerance[near][owner]
            side = side_of_line(values, vertex_tolerance)
            cut_here = (np.add.reduceat(side > 0, polygons.starts) > 0) & \
                (np.add.reduceat(side < 0, polygons.starts) > 0)
            if cut_here.any():
                cut_vertices = np.repeat(cut_here, polygons.counts)
                positive, negative = cut(Polygons(polygons.vertices[cut_vertices], polygons.counts[cut_here]),
                                         values[cut_vertices], vertex_tolerance[cut_vertices])
                cut_pieces = candidates[cut_here]
                pool.alive[cut_pieces] = False
                children = np.concatenate([pool.add(positive, pool.parent[cut_pieces]),
                                           pool.add(negative, pool.parent[cut_pieces])])
                split[np.nonzero(near)[0][cut_here]] = True
                n_alive += len(cut_pieces)
                if n_alive > max_regions:
                    raise _too_large(layer_index, f"already has more than max_regions={max_regions} regions")
        round_index += 1
        active = np.concatenate([active[~split], children])
        active = active[lines_per_parent[pool.parent[active]] > round_index]
    alive = np.nonzero(pool.alive[:pool.size])[0]
    alive = alive[np.argsort(pool.parent[alive], kind="stable")]
    pieces, parent = pool.get(alive), pool.parent[alive]
    return pieces, parent, _layer_codes(pieces, parent, pre, crossing, above)


def _too_large(layer_index: int, what: str) -> PartitionTooLarge:
    return PartitionTooLarge(f"hidden layer {layer_index} {what}; shrink the bounds, use a smaller model, or raise "
                             "max_regions (memory grows with the region count)")


def _check_growth(parents: Polygons, pre: np.ndarray, crossing: np.ndarray, frame: Frame, max_regions: int,
                  layer_index: int) -> None:
    """Stop before cutting when a lower bound on the layer's region count already exceeds ``max_regions``.

    Cutting a parent by ``k`` lines costs about ``k`` times its number of pieces, so a parent crossed by thousands of
    lines would reach the cap only after minutes. When the count may exceed the cap (it is at most
    ``1 + k + k (k - 1) / 2`` pieces per parent), the parents crossed by the most lines are counted first: a parent
    crossed by a line gives at least 2 pieces, and one crossed by many gives :func:`_pieces_lower_bound`.
    At most about :data:`PAIR_BUDGET` line pairs are examined (of a parent crossed by more lines, the first
    ``sqrt(PAIR_BUDGET)``: fewer lines make fewer pieces, so the bound holds); the cutting rounds check the cap as well.
    """
    lines_per_parent = crossing.sum(axis=1)
    if int((1 + lines_per_parent + lines_per_parent * (lines_per_parent - 1) // 2).sum()) <= max_regions:
        return
    lower = len(lines_per_parent) + int(np.count_nonzero(lines_per_parent))
    order = np.argsort(-lines_per_parent, kind="stable")
    order = order[lines_per_parent[order] >= MANY_LINES]
    examined = 0
    for parent in order:
        if examined > PAIR_BUDGET:
            return
        lines = pre[parent][:, crossing[parent]].T[:math.isqrt(PAIR_BUDGET)]
        examined += len(lines) ** 2
        lower += _pieces_lower_bound(parents.subset(np.array([parent])), lines, frame) - 2
        if lower > max_regions:
            raise _too_large(layer_index, f"would have at least {lower} regions (counted from where its node lines "
                                          f"cross), more than max_regions={max_regions}")


def _pieces_lower_bound(polygon: Polygons, lines: np.ndarray, frame: Frame) -> int:
    """At least how many pieces ``lines`` (k, 3), each crossing the convex ``polygon``, cut it into.

    Adding line ``j`` to the arrangement adds ``1 + m_j`` pieces, ``m_j`` the distinct points inside the polygon where
    it meets the earlier lines, and nothing if it coincides with an earlier line. Points closer than
    :data:`MERGE_DISTANCE` (relative to the domain), lines that nearly coincide and intersections near the
    polygon's edges are merged, skipped or left out, which only lowers the count.
    """
    merge = MERGE_DISTANCE * (frame.half + max(abs(frame.centre_x), abs(frame.centre_y)))
    lines = lines / np.hypot(lines[:, 1], lines[:, 2])[:, None]
    c, a, b = lines[:, 0], lines[:, 1], lines[:, 2]
    vertices = polygon.vertices
    edges = np.roll(vertices, -1, axis=0) - vertices
    length = np.hypot(edges[:, 0], edges[:, 1])
    keep = length > 0
    normal = np.stack([-edges[keep, 1], edges[keep, 0]], axis=1) / length[keep, None]  # inward: counter-clockwise
    offset = -np.einsum("ij,ij->i", normal, vertices[keep])
    n_lines = len(lines)
    pieces = 1
    step = max(1, PAIRS_PER_STEP // n_lines)
    for first in range(0, n_lines, step):
        j = np.arange(first, min(first + step, n_lines))
        det = a[:, None] * b[j] - b[:, None] * a[j]  # (k, len(j)): earlier line i, new line j
        earlier = np.arange(n_lines)[:, None] < j
        parallel = np.abs(det) < 1e-6  # sine of the angle: nearer-parallel pairs meet too imprecisely to count
        same_direction = a[:, None] * a[j] + b[:, None] * b[j] > 0
        gap = np.abs(np.where(same_direction, c[:, None] - c[j], c[:, None] + c[j]))
        duplicate = (earlier & parallel & (gap <= merge)).any(axis=0)
        safe_det = np.where(parallel, 1.0, det)
        x = (b[:, None] * c[j] - b[j] * c[:, None]) / safe_det
        y = (a[j] * c[:, None] - a[:, None] * c[j]) / safe_det
        inside = earlier & ~parallel
        for (nx, ny), d in zip(normal, offset):
            inside &= nx * x + ny * y + d > merge
        along = np.sort(np.where(inside, x * -b[j] + y * a[j], np.inf), axis=0)
        distinct = np.isfinite(along)
        with np.errstate(invalid="ignore"):  # inf - inf past the last point
            distinct[1:] &= np.diff(along, axis=0) > merge
        pieces += int(np.where(duplicate, 0, 1 + distinct.sum(axis=0)).sum())
    return pieces
