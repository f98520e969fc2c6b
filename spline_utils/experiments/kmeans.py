"""Fig 10: k-means on a grid of Gaussians, from a random start and by overparametrizing, then pruning centroids.

:func:`gaussian_grid`, :func:`lloyd`, :func:`prune_centroids` (remove the centroid whose removal costs least, re-run
Lloyd) and :func:`recovered_centres`; :func:`draw_voronoi` draws a result.
"""
from __future__ import annotations

import numpy as np

from spline_utils import plot

def gaussian_grid(side: int = 8, spacing: float = 1.0, std: float = 0.1, per_cluster: int = 50, seed: int = 0):
    """A mixture of ``side**2`` isotropic 2-D Gaussians centred on a ``side x side`` grid.

    Returns
    -------
    points : ndarray, shape (side**2 * per_cluster, 2)
    centres : ndarray, shape (side**2, 2)
    """
    if side < 1 or per_cluster < 1 or std <= 0 or spacing <= 0:
        raise ValueError("need side >= 1, per_cluster >= 1, std > 0 and spacing > 0")
    grid = np.arange(side) * spacing
    centres = np.stack(np.meshgrid(grid, grid, indexing="ij"), axis=-1).reshape(-1, 2)
    noise = np.random.default_rng(seed).normal(0.0, std, size=(len(centres), per_cluster, 2))
    return (centres[:, None, :] + noise).reshape(-1, 2), centres


def squared_distances(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """``(n, k)`` squared Euclidean distances, shapes ``points`` (n, d) and ``centroids`` (k, d)."""
    distances = np.zeros((len(points), len(centroids)))
    for dim in range(points.shape[1]):
        distances += np.subtract.outer(points[:, dim], centroids[:, dim]) ** 2
    return distances


def kmeans_cost(points: np.ndarray, centroids: np.ndarray) -> float:
    """Sum of squared distances of every point to its nearest centroid (sklearn's ``inertia_``)."""
    return float(squared_distances(points, centroids).min(axis=1).sum())


def random_init(points: np.ndarray, k: int, seed: int) -> np.ndarray:
    """``k`` distinct data points drawn uniformly (Forgy initialization)."""
    if not 1 <= k <= len(points):
        raise ValueError(f"need 1 <= k <= {len(points)} points, got k={k}")
    return points[np.random.default_rng(seed).choice(len(points), size=k, replace=False)].copy()


def lloyd(points: np.ndarray, centroids: np.ndarray, max_iter: int = 300) -> np.ndarray:
    """Lloyd's algorithm from ``centroids`` (k, 2) until the assignment stops changing; returns new centroids.

    A centroid that loses all its points stays where it is.
    """
    centroids = np.array(centroids, dtype=float)
    labels = None
    for _ in range(max_iter):
        new_labels = squared_distances(points, centroids).argmin(axis=1)
        if labels is not None and np.array_equal(labels, new_labels):
            break
        labels = new_labels
        counts = np.bincount(labels, minlength=len(centroids))
        sums = np.stack([np.bincount(labels, points[:, d], len(centroids)) for d in range(points.shape[1])], 1)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
    return centroids


def removal_costs(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Exact increase of :func:`kmeans_cost` when each centroid alone is removed, shape (k,).

    The points of centroid c move to their second-nearest centroid: the increase is the sum over them of
    (second-nearest minus nearest squared distance).
    """
    if len(centroids) < 2:
        raise ValueError("need at least two centroids to remove one")
    distances = squared_distances(points, centroids)
    nearest = distances.argmin(axis=1)
    two_smallest = np.partition(distances, 1, axis=1)[:, :2]
    return np.bincount(nearest, two_smallest[:, 1] - two_smallest[:, 0], minlength=len(centroids))


def prune_centroids(points: np.ndarray, centroids: np.ndarray, k: int, lloyd_steps: int = 300):
    """Overparametrize-then-prune k-means: from more than ``k`` converged centroids down to ``k``.

    Repeatedly remove the centroid whose removal increases the cost least (:func:`removal_costs`), then run Lloyd
    (at most ``lloyd_steps`` iterations) from the survivors.

    Returns
    -------
    centroids : ndarray, shape (k, 2)
    history : list of ndarray
        The centroids after every removal (and the start), from ``len(centroids)`` down to ``k``.
    """
    if not 1 <= k <= len(centroids):
        raise ValueError(f"need 1 <= k <= {len(centroids)} centroids, got k={k}")
    current = np.array(centroids, dtype=float)
    history = [current]
    while len(current) > k:
        current = np.delete(current, int(removal_costs(points, current).argmin()), axis=0)
        current = lloyd(points, current, lloyd_steps)
        history.append(current)
    return current, history


def recovered_centres(centres: np.ndarray, centroids: np.ndarray, radius: float) -> np.ndarray:
    """Which true centres are recovered, bool (n_centres,).

    Centre j is recovered when its nearest centroid is within ``radius`` and that centroid's nearest true centre is
    j (mutual nearest neighbours: one centroid never recovers two centres).
    """
    distances = squared_distances(centres, centroids)
    nearest_centroid = distances.argmin(axis=1)
    nearest_centre = distances.argmin(axis=0)
    close = distances[np.arange(len(centres)), nearest_centroid] <= radius ** 2
    return close & (nearest_centre[nearest_centroid] == np.arange(len(centres)))


def draw_voronoi(ax, points: np.ndarray, centres: np.ndarray, centroids: np.ndarray, radius: float,
                 view=(-0.6, 7.6, -0.6, 7.6), resolution: int = 360, title: str | None = None) -> np.ndarray:
    """The Voronoi cells of ``centroids`` (one faint tone each, white edges), the data in grey, the centroids in
    black and a red cross on every true centre that is not recovered (:func:`recovered_centres` with ``radius``).

    Returns
    -------
    ndarray of bool, shape (len(centres),)
        Which true centres were missed.
    """
    grid_x, grid_y = np.meshgrid(np.linspace(view[0], view[1], resolution), np.linspace(view[2], view[3], resolution))
    grid = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)
    cells = squared_distances(grid, centroids).argmin(axis=1).reshape(grid_x.shape)
    colours = plot.region_colours(len(centroids), seed=1, saturation=0.3)
    ax.imshow(colours[cells], extent=view, origin="lower", interpolation="nearest")
    ax.contour(grid_x, grid_y, cells, levels=np.arange(len(centroids)) + 0.5, colors="white", linewidths=0.6)
    ax.scatter(*points.T, s=0.6, color="#555555", alpha=0.5)
    ax.scatter(*centroids.T, s=14, color="black", zorder=3)
    missed = ~recovered_centres(centres, centroids, radius)
    ax.scatter(*centres[missed].T, marker="x", s=70, color=plot.BOUNDARY_RED, linewidths=2.2, zorder=4)
    plot.setup_axes(ax, view, title)
    return missed
