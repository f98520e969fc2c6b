"""The 3-D view of the paper's Fig 1(a): a network's exact affine pieces lifted over the plane, the partition below.

On every region of a partition a pre-activation (or the network's output) is affine, ``h(p) = c + a . p``, so its
graph over the region is a flat convex polygon in 3-D: the region's vertices lifted to the heights ``h(vertex)``.
:func:`lift` computes these pieces exactly from the per-region maps the partition keeps (nothing is sampled);
:func:`node_surface` and :func:`output_surface` pick the maps of one node or of a logit difference, and
:func:`draw_lifted` draws the pieces shaded by their slope, their zero set on the surface, and the partition
projected on a floor below, as in the paper's picture.
"""
from __future__ import annotations

import numpy as np
from mpl_toolkits.mplot3d.art3d import Line3DCollection, Poly3DCollection

from spline_utils.checks import check_index
from spline_utils.engine.partition import Partition
from spline_utils.engine.polygons import Polygons, clip_lines

SURFACE_GREY = np.array([0.78, 0.81, 0.87])  # one neutral tone, shaded by the slope of each piece
EDGE_GREY = "#6f6f6f"
# Drawing order (the floor first, the surface's zero set last): mplot3d's depth sort would otherwise hide lines
# under the planes they lie on.
FLOOR, FLOOR_LINES, SURFACE, SURFACE_LINES = 0, 1, 2, 3


def lift(polygons: Polygons, maps: np.ndarray) -> list[np.ndarray]:
    """Each region's vertices lifted to the height of its affine map.

    Parameters
    ----------
    polygons : Polygons
        ``n`` convex regions in the 2-D coordinates.
    maps : ndarray, shape (n, 3)
        On region ``r`` the height is ``maps[r, 0] + maps[r, 1] * a + maps[r, 2] * b``.

    Returns
    -------
    list of ndarray, each (n_i, 3)
        The vertices ``(a, b, height)`` of every region, in the polygons' vertex order.
    """
    maps = np.asarray(maps, dtype=float)
    if maps.shape != (len(polygons), 3):
        raise ValueError(f"maps must have shape ({len(polygons)}, 3), one affine map (offset, d/da, d/db) per "
                         f"region; got {maps.shape}")
    vertices = polygons.vertices
    per_vertex = maps[polygons.owner]
    heights = per_vertex[:, 0] + per_vertex[:, 1] * vertices[:, 0] + per_vertex[:, 2] * vertices[:, 1]
    lifted = np.concatenate([vertices, heights[:, None]], axis=1)
    return np.split(lifted, polygons.starts[1:])


def node_surface(partition: Partition, layer: int, node: int) -> tuple[Polygons, np.ndarray]:
    """The pre-activation of one hidden node on the regions of the layers before it.

    Parameters
    ----------
    layer, node : int
        Hidden layer (0-based) and node of that layer.

    Returns
    -------
    polygons : Polygons
        The partition after layer ``layer - 1`` (the undivided domain for ``layer == 0``).
    maps : ndarray, shape (len(polygons), 3)
        The node's pre-activation on each of them: affine there, so its graph has creases only on earlier splines.
    """
    layer = check_index("layer", layer, len(partition.layers), "the partition's hidden layers")
    current = partition.layers[layer]
    node = check_index("node", node, current.num_nodes, f"the nodes of layer {layer}")
    return partition.polygons_after(layer - 1), current.pre_activation_columns(node)


def output_surface(partition: Partition, classes: tuple[int, int] = (1, 0)) -> tuple[Polygons, np.ndarray]:
    """The logit difference ``f_i - f_j`` on the final regions; its zero set is the decision boundary.

    Returns
    -------
    polygons : Polygons
        The final partition.
    maps : ndarray, shape (num_regions, 3)
        ``f_i - f_j`` on each region as (offset, d/da, d/db).
    """
    maps = partition.output_maps()
    if isinstance(classes, (str, bytes)) or not hasattr(classes, "__len__") or len(classes) != 2:
        raise TypeError(f"classes must be a pair (i, j) of output indexes, e.g. (1, 0); got {classes!r}")
    first, second = (check_index(f"classes[{position}]", index, maps.shape[2], "the network's outputs")
                     for position, index in enumerate(classes))
    return partition.polygons, maps[:, :, first] - maps[:, :, second]


def draw_lifted(ax, polygons: Polygons, maps: np.ndarray, floor_segments=(), zero_colour="#1f5fbf",
                floor_gap: float = 0.6, edge_width: float = 0.4, zero_width: float = 2.2,
                vertical_links: bool = True):
    """Draw the lifted pieces over a floor that shows the partition (paper's Fig 1(a), 3-D).

    Parameters
    ----------
    ax : mpl_toolkits.mplot3d.Axes3D
    polygons, maps
        As for :func:`lift`.
    floor_segments : sequence of (segments, colour, linewidth)
        Line segments of shape (n, 2, 2) drawn on the floor, e.g. earlier splines in grey and the new one dark.
    zero_colour : colour
        The zero set of the lifted function (a spline, or the decision boundary): drawn on the surface and on the
        floor.
    floor_gap : float
        Distance of the floor below the lowest piece, as a fraction of the height range.
    vertical_links : bool
        Dashed verticals from the domain's corners on the surface to the floor.

    Returns
    -------
    float
        The floor's height.
    """
    pieces = lift(polygons, maps)
    ax.computed_zorder = False
    heights = np.concatenate([piece[:, 2] for piece in pieces])
    low, high = float(heights.min()), float(heights.max())
    span = max(high - low, 1e-9)
    floor = low - floor_gap * span
    slopes = np.asarray(maps, dtype=float)[:, 1:]
    normals = np.concatenate([-slopes, np.ones((len(slopes), 1))], axis=1)
    light = np.array([-0.4, -0.5, 1.0]) / np.linalg.norm([-0.4, -0.5, 1.0])
    shade = 0.55 + 0.45 * (normals @ light) / np.linalg.norm(normals, axis=1)
    faces = np.clip(SURFACE_GREY[None, :] * shade[:, None], 0, 1)
    # autolim=False: matplotlib autoscales on its padded array of ragged faces, whose padding is uninitialized
    # memory (np.empty), so the limits were garbage now and then; they are set from the pieces below
    ax.add_collection3d(Poly3DCollection(pieces, facecolors=faces, edgecolors=EDGE_GREY, linewidths=edge_width,
                                         alpha=0.9, zorder=SURFACE), autolim=False)
    xmin, xmax, ymin, ymax = _extent(polygons)
    corners = np.array([[xmin, ymin], [xmax, ymin], [xmax, ymax], [xmin, ymax]])
    ax.add_collection3d(Poly3DCollection([np.c_[corners, np.full(4, floor)]], facecolors="#eeeeee",
                                         edgecolors="none", zorder=FLOOR))
    for segments, colour, width in floor_segments:
        _draw_floor_segments(ax, np.asarray(segments, dtype=float), floor, colour, width)
    _, zero_set = clip_lines(polygons, np.asarray(maps, dtype=float))
    if len(zero_set):
        ax.add_collection3d(Line3DCollection(np.concatenate([zero_set, np.zeros((len(zero_set), 2, 1))], axis=2),
                                             colors=zero_colour, linewidths=zero_width, zorder=SURFACE_LINES))
        _draw_floor_segments(ax, zero_set, floor, zero_colour, zero_width)
    if vertical_links:
        for piece in pieces:
            for vertex in piece:
                if any(np.allclose(vertex[:2], corner) for corner in corners):
                    ax.plot([vertex[0]] * 2, [vertex[1]] * 2, [floor, vertex[2]], "k--", linewidth=0.7,
                            zorder=FLOOR_LINES)
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.set_zlim(floor, high + 0.05 * span)
    return floor


def _draw_floor_segments(ax, segments: np.ndarray, floor: float, colour, width: float) -> None:
    if len(segments):
        lifted = np.concatenate([segments, np.full((len(segments), 2, 1), floor)], axis=2)
        ax.add_collection3d(Line3DCollection(lifted, colors=colour, linewidths=width, zorder=FLOOR_LINES))


def _extent(polygons: Polygons) -> tuple[float, float, float, float]:
    vertices = polygons.vertices
    return (float(vertices[:, 0].min()), float(vertices[:, 0].max()), float(vertices[:, 1].min()),
            float(vertices[:, 1].max()))


def draw_node_view(ax, partition: Partition, layer: int, node: int, new_colour="#222222", old_colour="#b0b0b0"):
    """One hidden node's pre-activation lifted over the regions of the earlier layers (creases on their splines),
    its spline (the zero set) dark on the surface and on the floor, the earlier splines grey on the floor."""
    floor_segments = [(partition.layer_spline_segments(earlier), old_colour, 0.9) for earlier in range(layer)]
    floor = draw_lifted(ax, *node_surface(partition, layer, node), floor_segments, zero_colour=new_colour)
    _clean(ax)
    return floor


def draw_output_view(ax, partition: Partition, classes: tuple[int, int] = (1, 0), boundary_colour="#1f5fbf",
                     old_colour="#b0b0b0"):
    """The logit difference lifted over the final regions, the decision boundary blue on the surface and on the
    floor, every hidden spline grey on the floor."""
    floor_segments = [(partition.layer_spline_segments(layer), old_colour, 0.9)
                      for layer in range(len(partition.layers))]
    floor = draw_lifted(ax, *output_surface(partition, classes), floor_segments, zero_colour=boundary_colour)
    _clean(ax)
    return floor


def _clean(ax) -> None:
    """No panes, ticks or axis lines: the pieces and the floor carry the picture, as in the paper."""
    ax.set_axis_off()
    ax.view_init(elev=28, azim=-58)
    ax.set_box_aspect((1, 1, 0.9))
