"""How a grid samples an exact partition: distinct codes on grids against the exact region count (chapter 1).

A grid finds a region only if one of its points falls inside it. Thin regions (slivers) are hit by chance, so a
finer grid can miss a sliver that a coarser grid hit: the cell centres of an ``n x n`` grid are not among those of a
``2n x 2n`` grid (they are among those of a ``3n x 3n`` grid).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from spline_utils import plot
from spline_utils.engine.partition2d import grid_codes


def regions_on_grid(model, partition, resolution: int) -> np.ndarray:
    """Indices of the partition's regions that contain a point of the ``resolution x resolution`` grid.

    Raises ``AssertionError`` if a grid code is not a region of the partition (the engine would have missed one).
    """
    _, codes = grid_codes(model, partition.bounds, resolution, plane=partition.plane)
    found = partition.region_index(codes)
    assert (found >= 0).all(), "every code seen on the grid must be a region of the exact partition"
    return np.unique(found)


def minimum_widths(regions) -> np.ndarray:
    """Width of each convex polygon: its smallest extent across any direction (attained across one of its edges).

    Parameters
    ----------
    regions : list of ndarray, each (n_i, 2)
        Vertices of convex polygons, in order.

    Returns
    -------
    ndarray, shape (len(regions),)
    """
    widths = np.empty(len(regions))
    for index, vertices in enumerate(regions):
        edges = np.roll(vertices, -1, axis=0) - vertices
        lengths = np.hypot(edges[:, 0], edges[:, 1])
        keep = lengths > 0
        normals = np.stack([-edges[keep, 1], edges[keep, 0]], axis=1) / lengths[keep, None]
        extents = vertices @ normals.T  # (vertices, edges)
        widths[index] = (extents.max(axis=0) - extents.min(axis=0)).min()
    return widths


def draw_grid_counts(partition, resolutions, counts, missed: np.ndarray, missed_resolution: int, width: float = 8.0):
    """Left: distinct codes on each grid against the exact count. Right: the regions one grid misses, in red.

    Parameters
    ----------
    resolutions, counts : sequences of int
        Grid points per side, and the regions each grid finds.
    missed : ndarray of int
        The regions the ``missed_resolution`` grid misses.
    """
    exact = partition.num_regions
    fig, (ax_count, ax_missed) = plt.subplots(1, 2, figsize=(width, width * 0.49),
                                              gridspec_kw={"width_ratios": [1.15, 1]})
    ax_count.plot(resolutions, counts, "o-", color=plot.SPLINE_BLUE, label="codes on the grid")
    ax_count.axhline(exact, color="k", linestyle="--", label=f"exact: {exact}")
    ax_count.set_xscale("log")
    ax_count.set_xticks(resolutions, [str(r) for r in resolutions])
    ax_count.minorticks_off()
    ax_count.set_xlabel("grid points per side")
    ax_count.set_ylabel("regions found")
    ax_count.legend(loc="lower right")
    plot.setup_axes(ax_missed, partition.bounds, f"missed by a {missed_resolution} x {missed_resolution} grid")
    colours = np.tile([0.95, 0.95, 0.95, 1.0], (exact, 1))
    colours[missed] = [0.85, 0.1, 0.1, 1.0]
    plot.draw_regions(ax_missed, partition.polygons, colours=colours,
                      edgecolor="#999999", linewidth=0.4)
    ax_missed.scatter(*partition.interior_points()[missed].T, s=140, facecolors="none", edgecolors="red",
                      linewidths=1.5)
    fig.tight_layout()
    return fig
