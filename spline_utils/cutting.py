"""Cutting convex regions by the zero lines of a layer's nodes: the core of the exact partition engine.

Round ``j`` cuts every live piece by the ``j``-th node line that crosses its parent region, vectorized over pieces,
so the Python loop runs over the largest number of lines crossing one parent, never over regions. A bounding-box
test keeps each round to the pieces its lines can reach.
"""
from __future__ import annotations

import numpy as np

from .polygons import PolygonPool, Polygons, cut, side_of_line

RELATIVE_TOLERANCE = 1e-10
ROWS_PER_CHUNK = 16384  # regions whose codes are computed in one matrix product
MATMUL_GROUP = 64


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


def line_tolerance(maps: np.ndarray, scale: float) -> np.ndarray:
    """Distance-to-line tolerance of affine functions (..., 3) on a domain of half-size ``scale``."""
    return RELATIVE_TOLERANCE * (np.abs(maps[..., 0]) + scale * (np.abs(maps[..., 1]) + np.abs(maps[..., 2])))


def _crossing_lines(parents: Polygons, pre: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
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
    tolerance = line_tolerance(np.moveaxis(pre, 1, 2), scale)
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


def cut_by_layer(parents: Polygons, pre: np.ndarray, scale: float, max_regions: int, layer_index: int):
    """Cut every parent region by the zero lines of this layer's nodes that cross it.

    Round ``j`` cuts every live piece by the ``j``-th line crossing its parent. A bounding-box test first discards
    the pieces the line cannot reach, so a round only touches the few pieces near its lines.

    Returns the pieces (grouped by parent, parents in order), each piece's parent index and its layer code.
    """
    crossing, above = _crossing_lines(parents, pre, scale)
    _, line_node = np.nonzero(crossing)
    lines_per_parent = crossing.sum(axis=1)
    first_line = np.cumsum(lines_per_parent) - lines_per_parent
    pool = PolygonPool(parents, np.arange(len(parents)))
    active = np.nonzero(lines_per_parent > 0)[0]
    n_alive, round_index = len(parents), 0
    while len(active):
        parent = pool.parent[active]
        lines = pre[parent, :, line_node[first_line[parent] + round_index]]
        tolerance = line_tolerance(lines, scale)
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
                    raise PartitionTooLarge(
                        f"hidden layer {layer_index} already has more than max_regions={max_regions} regions; "
                        "shrink the bounds, use a smaller model, or raise max_regions (memory grows with the "
                        "region count)")
        round_index += 1
        active = np.concatenate([active[~split], children])
        active = active[lines_per_parent[pool.parent[active]] > round_index]
    alive = np.nonzero(pool.alive[:pool.size])[0]
    alive = alive[np.argsort(pool.parent[alive], kind="stable")]
    pieces, parent = pool.get(alive), pool.parent[alive]
    return pieces, parent, _layer_codes(pieces, parent, pre, crossing, above)
