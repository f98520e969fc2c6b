"""Vectorized geometry on many convex polygons stored flat (CSR: one vertex array plus counts).

The partition engine never loops over regions in Python: every operation here acts on all polygons at once.
Polygons are counter-clockwise, float64, with at least three vertices each.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from spline_utils.engine.tolerance import Frame, line_tolerance, min_segment_length


@dataclass
class Polygons:
    """Convex polygons stored flat.

    Attributes
    ----------
    vertices : ndarray, shape (n_vertices, 2)
        All vertices, polygon after polygon, each polygon counter-clockwise.
    counts : ndarray of int64, shape (n_polygons,)
        Number of vertices of each polygon.
    """

    vertices: np.ndarray
    counts: np.ndarray

    @cached_property
    def starts(self) -> np.ndarray:
        """Index of each polygon's first vertex, shape (n_polygons,) (computed once: polygons are not modified)."""
        return (np.cumsum(self.counts) - self.counts).astype(np.int64)

    @property
    def owner(self) -> np.ndarray:
        """Polygon index of every vertex, shape (n_vertices,)."""
        return np.repeat(np.arange(len(self.counts)), self.counts)

    def __len__(self) -> int:
        return len(self.counts)

    def next_vertex(self) -> np.ndarray:
        """Index of the following vertex along each polygon (cyclic), shape (n_vertices,)."""
        following = np.arange(1, len(self.vertices) + 1)
        following[self.starts + self.counts - 1] = self.starts
        return following

    def split(self) -> list[np.ndarray]:
        """The polygons as a list of (n_i, 2) arrays."""
        return np.split(self.vertices, np.cumsum(self.counts)[:-1]) if len(self.counts) else []

    def subset(self, index: np.ndarray) -> "Polygons":
        """The polygons ``index`` (an integer array), in that order."""
        index = np.asarray(index, dtype=np.int64)
        counts = self.counts[index]
        vertex_index = np.repeat(self.starts[index] - (np.cumsum(counts) - counts), counts)
        vertex_index += np.arange(counts.sum())
        return Polygons(self.vertices[vertex_index], counts)

    def areas(self) -> np.ndarray:
        """Shoelace areas, shape (n_polygons,), relative to each polygon's first vertex (exact far from the origin)."""
        if not len(self.counts):
            return np.zeros(0)
        relative = self.vertices - np.repeat(self.vertices[self.starts], self.counts, axis=0)
        x, y = relative[:, 0], relative[:, 1]
        following = self.next_vertex()
        cross = x * y[following] - x[following] * y
        return 0.5 * np.add.reduceat(cross, self.starts)

    def vertex_means(self) -> np.ndarray:
        """Mean of each polygon's vertices, shape (n_polygons, 2): a point strictly inside a convex polygon."""
        if not len(self.counts):
            return np.zeros((0, 2))
        return np.add.reduceat(self.vertices, self.starts, axis=0) / self.counts[:, None]

    @staticmethod
    def concatenate(parts: list["Polygons"]) -> "Polygons":
        """Stack several :class:`Polygons` into one."""
        return Polygons(np.concatenate([p.vertices for p in parts]) if parts else np.zeros((0, 2)),
                        np.concatenate([p.counts for p in parts]) if parts else np.zeros(0, np.int64))

    def bounding_boxes(self) -> np.ndarray:
        """``(xmin, xmax, ymin, ymax)`` of every polygon, shape (n_polygons, 4)."""
        if not len(self):
            return np.zeros((0, 4))
        boxes = np.empty((len(self), 4))
        np.minimum.reduceat(self.vertices.T, self.starts, axis=1, out=boxes[:, 0::2].T)
        np.maximum.reduceat(self.vertices.T, self.starts, axis=1, out=boxes[:, 1::2].T)
        return boxes


def rectangle(bounds) -> Polygons:
    """The domain ``(xmin, xmax, ymin, ymax)`` as one counter-clockwise polygon."""
    xmin, xmax, ymin, ymax = bounds
    vertices = np.array([[xmin, ymin], [xmax, ymin], [xmax, ymax], [xmin, ymax]], dtype=np.float64)
    return Polygons(vertices, np.array([4], dtype=np.int64))


def z_order_keys(points: np.ndarray) -> np.ndarray:
    """Z-order (Morton) key of 2-D points, shape (n,) uint64: sorting by it puts nearby points close together.

    Each coordinate is scaled to 16 bits over the points' bounding box and its bits are interleaved with the other's.
    """
    if not len(points):
        return np.zeros(0, dtype=np.uint64)
    low, high = points.min(axis=0), points.max(axis=0)
    scaled = ((points - low) / np.where(high > low, high - low, 1.0) * 65535).astype(np.uint64)
    return _spread_bits(scaled[:, 0]) | (_spread_bits(scaled[:, 1]) << np.uint64(1))


def _spread_bits(values: np.ndarray) -> np.ndarray:
    """Bit ``i`` of each 16-bit value moved to bit ``2 i`` (zeros in between)."""
    for shift, mask in ((8, 0x00FF00FF), (4, 0x0F0F0F0F), (2, 0x33333333), (1, 0x55555555)):
        values = (values | (values << np.uint64(shift))) & np.uint64(mask)
    return values


def side_of_line(values: np.ndarray, tolerance: np.ndarray) -> np.ndarray:
    """-1, 0 or +1 per vertex: below, on (within ``tolerance``) or above a line with signed ``values``."""
    return (values > tolerance).astype(np.int8) - (values < -tolerance).astype(np.int8)


def clip_lines(polygons: Polygons, lines: np.ndarray, frame: Frame | None = None):
    """Intersect each polygon with its own line ``c + a1 x + a2 y = 0``.

    Parameters
    ----------
    polygons : Polygons
    lines : ndarray, shape (n_polygons, 3)
        ``(c, a1, a2)`` per polygon.
    frame : Frame, optional
        The domain the tolerances are relative to (see :func:`line_tolerance`); by default the polygons' bounding box.

    Returns
    -------
    hit : ndarray of bool, shape (n_polygons,)
        Where the line crosses the polygon's interior (a segment of positive length).
    segments : ndarray, shape (hit.sum(), 2, 2)
        The segments' end points.
    """
    owner = polygons.owner
    c, a1, a2 = lines[owner, 0], lines[owner, 1], lines[owner, 2]
    x, y = polygons.vertices[:, 0], polygons.vertices[:, 1]
    values = c + a1 * x + a2 * y
    if frame is None:
        vertices = polygons.vertices if len(polygons.vertices) else np.zeros((1, 2))
        frame = Frame.around((vertices[:, 0].min(), vertices[:, 0].max(), vertices[:, 1].min(), vertices[:, 1].max()))
    tolerance = line_tolerance(lines, frame)[owner]
    side = side_of_line(values, tolerance)
    following = polygons.next_vertex()
    crossing = side * side[following] < 0
    t = np.where(crossing, values / np.where(crossing, values - values[following], 1.0), 0.0)
    points = np.concatenate([polygons.vertices, polygons.vertices + t[:, None] *
                             (polygons.vertices[following] - polygons.vertices)])
    valid = np.concatenate([side == 0, crossing])
    point_owner = np.concatenate([owner, owner])
    norm = np.hypot(lines[:, 1], lines[:, 2])
    safe_norm = np.where(norm > 0, norm, 1.0)
    direction = np.stack([-lines[:, 2], lines[:, 1]], axis=1) / safe_norm[:, None]
    along = np.einsum("ij,ij->i", points, direction[point_owner])
    n = len(polygons)
    lowest = np.full(n, np.inf)
    highest = np.full(n, -np.inf)
    np.minimum.at(lowest, point_owner[valid], along[valid])
    np.maximum.at(highest, point_owner[valid], along[valid])
    hit = (highest - lowest > min_segment_length(frame)) & (norm > 0) & np.isfinite(lowest)
    # A polygon whose edge lies on the line has two "on" vertices and no crossing: that edge is shared with a
    # neighbour and belongs to the spline as well, so it counts.
    foot = -(lines[hit, 0] / safe_norm[hit] ** 2)[:, None] * lines[hit, 1:3]
    segments = np.stack([foot + lowest[hit, None] * direction[hit], foot + highest[hit, None] * direction[hit]],
                        axis=1)
    return hit, segments


def join_segments(segments: np.ndarray, decimals: int = 9) -> list[np.ndarray]:
    """Chain segments that share end points into polylines.

    Parameters
    ----------
    segments : ndarray, shape (n, 2, 2)
    decimals : int
        End points equal after rounding to this many decimals are the same point.

    Returns
    -------
    list of ndarray, each (m, 2): maximal chains, in no particular order.
    """
    keys = [tuple(p) for p in np.round(segments.reshape(-1, 2), decimals)]
    neighbours: dict = {}
    for index in range(len(segments)):
        for end in (0, 1):
            neighbours.setdefault(keys[2 * index + end], []).append((index, end))
    used = np.zeros(len(segments), dtype=bool)
    polylines = []

    def walk(index, end):
        chain = []
        while True:
            used[index] = True
            point_key = keys[2 * index + 1 - end]
            chain.append(segments[index, 1 - end])
            following = [(i, e) for i, e in neighbours[point_key] if not used[i]]
            if not following:
                return chain
            index, end = following[0]

    order = sorted(range(len(segments)), key=lambda i: min(len(neighbours[keys[2 * i]]),
                                                            len(neighbours[keys[2 * i + 1]])))
    for index in order:
        if used[index]:
            continue
        start_degree_one = len(neighbours[keys[2 * index]]) == 1
        end = 0 if start_degree_one or len(neighbours[keys[2 * index + 1]]) != 1 else 1
        head = segments[index, end]
        polylines.append(np.vstack([head[None], np.array(walk(index, end))]))
    return polylines
