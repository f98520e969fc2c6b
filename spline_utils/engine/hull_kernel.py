"""The compiled loop that merges the pieces of one region found in different tiles into one polygon.

A region's pieces are parts of one convex polygon, so their union is the convex hull of their vertices (Andrew's
monotone chain here). A region of one piece is copied as it is. In Python, building one array per region took
longer than partitioning the tiles of a 200k-region canvas.
"""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _turn(points, origin, a, b):
    """Twice the signed area of the triangle ``points[origin], points[a], points[b]`` (> 0: a left turn)."""
    return (points[a, 0] - points[origin, 0]) * (points[b, 1] - points[origin, 1]) - \
        (points[a, 1] - points[origin, 1]) * (points[b, 0] - points[origin, 0])


@numba.njit(cache=True)
def hull(points, tolerance):
    """Counter-clockwise convex hull of ``points`` (n, 2), without repeated vertices or vertices on a straight edge.

    Points are sorted by x, then y; a turn of at most ``tolerance`` (twice a triangle's area) counts as straight.
    """
    order = np.argsort(points[:, 1], kind="mergesort")
    order = order[np.argsort(points[order, 0], kind="mergesort")]
    unique = np.empty((len(points), 2))
    n = 0
    for index in order:
        if n == 0 or points[index, 0] != unique[n - 1, 0] or points[index, 1] != unique[n - 1, 1]:
            unique[n] = points[index]
            n += 1
    if n < 3:
        return unique[:n].copy()
    chain = np.empty(2 * n, dtype=np.int64)
    size = 0
    for direction in (1, -1):
        half_start = size
        for step in range(n):
            point = step if direction == 1 else n - 1 - step
            while size - half_start >= 2 and _turn(unique, chain[size - 2], chain[size - 1], point) <= tolerance:
                size -= 1
            chain[size] = point
            size += 1
        size -= 1  # each half ends where the other starts
    result = np.empty((size, 2))
    for k in range(size):
        result[k] = unique[chain[k]]
    return result


@numba.njit(cache=True)
def merged_regions(vertices, starts, counts, piece_order, region_first, tolerance):
    """Each region as one polygon: its only piece, or the hull of its pieces' vertices.

    Parameters
    ----------
    vertices : float64 ndarray, shape (n_vertices, 2)
    starts, counts : int64 ndarray, shape (n_pieces,)
        The pieces, counter-clockwise.
    piece_order : int64 ndarray, shape (n_pieces,)
        Pieces sorted by region: region ``g`` holds ``piece_order[region_first[g]:region_first[g + 1]]``.
    region_first : int64 ndarray, shape (n_regions + 1,)
    tolerance : float
        Turns counted as straight by :func:`hull`.

    Returns
    -------
    out_vertices : float64 ndarray, shape (m, 2)
    out_counts : int64 ndarray, shape (n_regions,)
    """
    n_regions = len(region_first) - 1
    out_vertices = np.empty((len(vertices), 2))
    out_counts = np.empty(n_regions, dtype=np.int64)
    written = 0
    for region in range(n_regions):
        first, stop = region_first[region], region_first[region + 1]
        if stop - first == 1:
            piece = piece_order[first]
            size = counts[piece]
            out_vertices[written:written + size] = vertices[starts[piece]:starts[piece] + size]
        else:
            total = 0
            for k in range(first, stop):
                total += counts[piece_order[k]]
            points = np.empty((total, 2))
            total = 0
            for k in range(first, stop):
                piece = piece_order[k]
                points[total:total + counts[piece]] = vertices[starts[piece]:starts[piece] + counts[piece]]
                total += counts[piece]
            polygon = hull(points, tolerance)
            size = len(polygon)
            out_vertices[written:written + size] = polygon
        out_counts[region] = size
        written += size
    return out_vertices[:written].copy(), out_counts
