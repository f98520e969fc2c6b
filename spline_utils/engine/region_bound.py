"""Stopping early: a lower bound on a layer's region count, checked before the layer is cut.

A parent region crossed by thousands of lines would take minutes to cut before the region cap is reached; counting
where its lines meet inside it bounds its pieces from below in a fraction of that time.
"""
from __future__ import annotations

import math

import numpy as np

from spline_utils.engine.polygons import Polygons
from spline_utils.engine.tolerance import Frame

MANY_LINES = 128  # parents crossed by fewer lines reach the region cap within seconds while being cut
PAIR_BUDGET = 2**23  # line pairs the lower bound on the region count may examine per layer
PAIRS_PER_STEP = 2**18  # line pairs examined in one vectorized step (bounds the temporary memory)
MERGE_DISTANCE = 1e-8  # intersections closer than this fraction of the domain's size are counted as one


class PartitionTooLarge(RuntimeError):
    """The partition would exceed the region cap or the memory cap given to :func:`spline_utils.partition2d`."""


class OutOfRoom(Exception):
    """A layer's cut made more pieces than the ``room`` its caller gave it (the memory the caller has left)."""


def too_large(layer_index: int, what: str) -> PartitionTooLarge:
    """The error for hidden layer ``layer_index``, saying what exceeds the cap and what to do."""
    return PartitionTooLarge(f"hidden layer {layer_index} {what}; shrink the bounds, use a smaller model, or raise "
                             "max_regions (memory grows with the region count)")


def check_growth(parents: Polygons, lines_per_parent: np.ndarray, parent_lines, frame: Frame, max_regions: int,
                 layer_index: int) -> None:
    """Stop before cutting when a lower bound on the layer's region count already exceeds ``max_regions``.

    Cutting a parent by ``k`` lines costs about ``k`` times its number of pieces, so a parent crossed by thousands of
    lines would reach the cap only after minutes. When the count may exceed the cap (it is at most
    ``1 + k + k (k - 1) / 2`` pieces per parent), the parents crossed by the most lines are counted first: a parent
    crossed by a line gives at least 2 pieces, and one crossed by many gives :func:`_pieces_lower_bound`.
    At most about :data:`PAIR_BUDGET` line pairs are examined (of a parent crossed by more lines, the first
    ``sqrt(PAIR_BUDGET)``: fewer lines make fewer pieces, so the bound holds); the cutting steps check the cap as well.

    ``lines_per_parent`` (n_parents,) counts the lines crossing each parent; ``parent_lines(p)`` gives them, (k, 3).
    """
    if int((1 + lines_per_parent + lines_per_parent * (lines_per_parent - 1) // 2).sum()) <= max_regions:
        return
    lower = len(lines_per_parent) + int(np.count_nonzero(lines_per_parent))
    order = np.argsort(-lines_per_parent, kind="stable")
    order = order[lines_per_parent[order] >= MANY_LINES]
    examined = 0
    for parent in order:
        if examined > PAIR_BUDGET:
            return
        lines = parent_lines(parent)[:math.isqrt(PAIR_BUDGET)]
        examined += len(lines) ** 2
        lower += _pieces_lower_bound(parents.subset(np.array([parent])), lines, frame) - 2
        if lower > max_regions:
            raise too_large(layer_index, f"would have at least {lower} regions (counted from where its node lines "
                                          f"cross), more than max_regions={max_regions}")


def _pieces_lower_bound(polygon: Polygons, lines: np.ndarray, frame: Frame) -> int:
    """At least how many pieces ``lines`` (k, 3), each crossing the convex ``polygon``, cut it into.

    Adding line ``j`` to the arrangement adds ``1 + m_j`` pieces, ``m_j`` the distinct points inside the polygon where
    it meets the earlier lines, and nothing if it coincides with an earlier line. Where line ``j`` meets line ``i``
    is read off ``j``'s chord through the polygon: ``i`` crosses it where its signed distance changes sign between the
    chord's two ends, at the fraction ``d0 / (d0 - d1)`` of the chord. That needs no intersection of the two lines, so
    nearly parallel lines that meet inside the polygon count like any others. Crossings whose end distances are
    within :data:`MERGE_DISTANCE` (relative to the domain) of zero, points closer than that along the chord, and
    lines that nearly coincide are left out or merged, which only lowers the count.
    """
    merge = MERGE_DISTANCE * (frame.half + max(abs(frame.centre_x), abs(frame.centre_y)))
    lines = lines / np.hypot(lines[:, 1], lines[:, 2])[:, None]
    starts, ends = _chords(polygon, lines, frame)
    length = np.hypot(*(ends - starts).T)
    n_lines = len(lines)
    pieces = 1
    step = max(1, PAIRS_PER_STEP // n_lines)
    for first in range(0, n_lines, step):
        j = np.arange(first, min(first + step, n_lines))
        earlier = np.arange(n_lines)[:, None] < j
        # signed distances of each chord's two ends from every line: (k, len(j))
        d0 = lines[:, :1] + lines[:, 1:2] * starts[j, 0] + lines[:, 2:] * starts[j, 1]
        d1 = lines[:, :1] + lines[:, 1:2] * ends[j, 0] + lines[:, 2:] * ends[j, 1]
        duplicate = (earlier & (np.abs(d0) <= merge) & (np.abs(d1) <= merge)).any(axis=0)
        crossing = earlier & (((d0 > merge) & (d1 < -merge)) | ((d0 < -merge) & (d1 > merge)))
        with np.errstate(invalid="ignore", divide="ignore"):
            along = np.where(crossing, d0 / (d0 - d1) * length[j], np.inf)
        along.sort(axis=0)
        distinct = np.isfinite(along)
        with np.errstate(invalid="ignore"):  # inf - inf past the last point
            distinct[1:] &= np.diff(along, axis=0) > merge
        real = (length[j] > merge) & ~duplicate
        pieces += int(np.where(real, 1 + distinct.sum(axis=0), 0).sum())
    return pieces


def _chords(polygon: Polygons, lines: np.ndarray, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
    """Where each normalized line (k, 3) enters and leaves the convex ``polygon``: two (k, 2) arrays of points.

    Each line is parametrized from the point of it nearest the domain's centre, so far-away domains keep their
    precision. A line that misses the polygon gets a chord of length 0.
    """
    centre = np.array([frame.centre_x, frame.centre_y])
    normal = lines[:, 1:]
    foot = centre - (lines[:, 0] + normal @ centre)[:, None] * normal
    direction = np.stack([-normal[:, 1], normal[:, 0]], axis=1)
    vertices = polygon.vertices
    edges = np.roll(vertices, -1, axis=0) - vertices
    edge_length = np.hypot(edges[:, 0], edges[:, 1])
    keep = edge_length > 0
    inward = np.stack([-edges[keep, 1], edges[keep, 0]], axis=1) / edge_length[keep, None]  # counter-clockwise
    offset = -np.einsum("ij,ij->i", inward, vertices[keep])
    value = foot @ inward.T + offset  # (k, edges): inward distance of the foot from each edge
    rate = direction @ inward.T
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = -value / rate
    low = np.where(rate > 0, bound, -np.inf).max(axis=1, initial=-np.inf)
    high = np.where(rate < 0, bound, np.inf).min(axis=1, initial=np.inf)
    outside = ((rate == 0) & (value < 0)).any(axis=1) | ~(high > low)
    low, high = np.where(outside, 0.0, low), np.where(outside, 0.0, high)
    return foot + low[:, None] * direction, foot + high[:, None] * direction
