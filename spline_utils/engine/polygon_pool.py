"""A growable store of convex polygons, in which the cutting steps cut pieces without copying the others."""
from __future__ import annotations

import numpy as np

from spline_utils.engine.polygons import Polygons

INITIAL_CAPACITY = 1024  # polygons a pool holds before it first grows (it doubles when full)


class PolygonPool:
    """A growable store of polygons in which pieces are cut without copying the untouched ones.

    Each polygon keeps its vertex range, parent index, bounding box and an ``alive`` flag; cutting a polygon marks it
    dead and appends its two halves.
    """

    def __init__(self, polygons: Polygons, parent: np.ndarray):
        n = len(polygons)
        self.vertices = polygons.vertices.copy()
        self.n_vertices = len(self.vertices)
        self.start = polygons.starts.copy()
        self.count = polygons.counts.copy()
        self.parent = np.asarray(parent, dtype=np.int64).copy()
        self.box = polygons.bounding_boxes()
        self.alive = np.ones(n, dtype=bool)
        self.size = n
        self._reserve(max(4 * n, INITIAL_CAPACITY), max(4 * self.n_vertices, 4 * INITIAL_CAPACITY))

    def get(self, index: np.ndarray) -> Polygons:
        """The polygons ``index`` as flat :class:`Polygons`."""
        counts = self.count[index]
        vertex_index = np.repeat(self.start[index] - (np.cumsum(counts) - counts), counts) + np.arange(counts.sum())
        return Polygons(self.vertices[vertex_index], counts)

    def add(self, polygons: Polygons, parent: np.ndarray) -> np.ndarray:
        """Append polygons; returns their indices."""
        n, n_vertices = len(polygons), len(polygons.vertices)
        self._reserve(self.size + n, self.n_vertices + n_vertices)
        new = slice(self.size, self.size + n)
        self.vertices[self.n_vertices:self.n_vertices + n_vertices] = polygons.vertices
        self.start[new] = self.n_vertices + polygons.starts
        self.count[new] = polygons.counts
        self.parent[new] = parent
        self.box[new] = polygons.bounding_boxes()
        self.alive[new] = True
        self.size += n
        self.n_vertices += n_vertices
        return np.arange(new.start, new.stop)

    def _reserve(self, n_polygons: int, n_vertices: int) -> None:
        if n_vertices > len(self.vertices):
            self.vertices = _grown(self.vertices, max(n_vertices, 2 * len(self.vertices)))
        if n_polygons > len(self.start):
            capacity = max(n_polygons, 2 * len(self.start))
            self.start, self.count = _grown(self.start, capacity), _grown(self.count, capacity)
            self.parent, self.box = _grown(self.parent, capacity), _grown(self.box, capacity)
            self.alive = _grown(self.alive, capacity)


def _grown(array: np.ndarray, length: int) -> np.ndarray:
    """A copy of ``array`` with room for ``length`` rows (the rows past the old ones are uninitialized)."""
    grown = np.empty((length, *array.shape[1:]), dtype=array.dtype)
    grown[:len(array)] = array
    return grown
