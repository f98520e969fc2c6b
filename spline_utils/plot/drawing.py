"""Drawing partitions, splines, decision boundaries and distance matrices in the paper's colours."""
from __future__ import annotations

import io

import matplotlib
import matplotlib.patheffects
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection, PolyCollection
from PIL import Image

from spline_utils.checks import check_integer
from spline_utils.engine.partition import Partition
from spline_utils.plot.readability import record_figure

__all__ = ["SPLINE_BLUE", "LIGHT_BLUE", "LAYER2_GREEN", "BOUNDARY_RED", "OLD_GREY", "NEW_DARK", "LAYER_COLOURS",
           "region_colours", "draw_regions", "draw_segments", "draw_layer_splines", "draw_boundary",
           "draw_node_splines", "distance_shades", "setup_axes", "draw_network", "figure_png", "FAINT_FILL",
           "draw_layer_view", "draw_previous_splines", "link_to_spline"]

# The paper's colours: splines blue, decision boundary red (Figs 2-4); Fig 1(a): new splines dark, older grey,
# classifier blue; Fig 3/4(b): layer 1 light blue, layer 2 green.
SPLINE_BLUE = "#1f5fbf"
LIGHT_BLUE = "#6fa8dc"
LAYER2_GREEN = "#2e9e44"
BOUNDARY_RED = "#d62728"
OLD_GREY = "#b0b0b0"
NEW_DARK = "#222222"
LAYER_COLOURS = ("#d62728", "#2ca02c", "#1f77b4", "#9467bd", "#ff7f0e")


def region_colours(n_regions: int, seed: int = 0, saturation: float = 0.35) -> np.ndarray:
    """``n_regions`` random pastel RGBA colours (seeded), one per region."""
    generator = np.random.default_rng(seed)
    hues = generator.uniform(0, 1, n_regions)
    values = generator.uniform(0.85, 1.0, n_regions)
    hsv = np.stack([hues, np.full(n_regions, saturation), values], axis=1)
    rgb = matplotlib.colors.hsv_to_rgb(hsv)
    return np.concatenate([rgb, np.ones((n_regions, 1))], axis=1)


def draw_regions(ax, polygons, colours=None, edgecolor="none", linewidth=0.3, seed: int = 0, **kwargs):
    """Fill convex regions (a :class:`~spline_utils.engine.polygons.Polygons`); random pastel colours by default.

    ``colours`` is one colour for all regions (e.g. :data:`FAINT_FILL`, the paper's look) or one per region.
    """
    regions = polygons.split()
    if colours is None:
        colours = region_colours(len(regions), seed)
    collection = PolyCollection(regions, facecolors=colours, edgecolors=edgecolor, linewidths=linewidth, **kwargs)
    ax.add_collection(collection)
    return collection


def draw_segments(ax, segments: np.ndarray, color=SPLINE_BLUE, linewidth: float = 1.0, **kwargs):
    """Draw segments of shape (n, 2, 2) as one LineCollection."""
    collection = LineCollection(segments, colors=color, linewidths=linewidth, **kwargs)
    ax.add_collection(collection)
    return collection


def draw_layer_splines(ax, partition: Partition, layer: int, color=SPLINE_BLUE, linewidth: float = 1.0, **kwargs):
    """Draw every spline of hidden layer ``layer`` (0-based)."""
    return draw_segments(ax, partition.layer_spline_segments(layer), color, linewidth, **kwargs)


def draw_boundary(ax, partition: Partition, classes=None, color=BOUNDARY_RED, linewidth: float = 2.0, **kwargs):
    """Draw the decision boundary (see :meth:`Partition.boundary_segments`)."""
    return draw_segments(ax, partition.boundary_segments(classes), color, linewidth, **kwargs)


def draw_node_splines(ax, partition: Partition, layer: int, colours, linewidth: float = 1.8, order=None, **kwargs):
    """Draw each node's spline of hidden layer ``layer`` (0-based) in its own colour.

    ``colours`` has one entry per node of the layer; ``order`` lists the nodes in drawing order (the last on top),
    all nodes in index order by default.
    """
    nodes = range(partition.layers[layer].num_nodes) if order is None else order
    return [draw_segments(ax, partition.spline_segments(layer, node), colours[node], linewidth, **kwargs)
            for node in nodes]


def distance_shades(distances: np.ndarray, reference: int, reference_colour="green", cmap: str = "Blues") -> list:
    """Colours for the splines of one layer by their distance to node ``reference`` (Fig 6, middle panel).

    ``distances`` is the layer's (n, n) spline distance matrix; close splines are dark, far ones light, and the
    reference itself gets ``reference_colour``.
    """
    row = np.asarray(distances, dtype=float)[reference]
    scaled = row / max(row.max(), 1e-12)
    shades = plt.get_cmap(cmap)(0.95 - 0.7 * scaled)
    return [reference_colour if node == reference else shades[node] for node in range(len(row))]


def setup_axes(ax, bounds, title: str | None = None, ticks: bool = False):
    """Square axes on ``bounds = (xmin, xmax, ymin, ymax)``, optional title, no ticks by default."""
    ax.set_xlim(bounds[0], bounds[1])
    ax.set_ylim(bounds[2], bounds[3])
    ax.set_aspect("equal")
    if not ticks:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


def draw_network(ax, layer_sizes, colours=LAYER_COLOURS, highlight: tuple | None = None, input_size: int = 2,
                 node_size: float = 30.0, labels: bool = True, fontsize: float = 11) -> list[np.ndarray]:
    """A small network diagram: input nodes, then one column per hidden layer, fully connected.

    Parameters
    ----------
    layer_sizes : sequence of int
        Hidden layer widths.
    highlight : (layer, node), optional
        A node drawn large with a black edge (0-based layer and node).
    labels : bool
        Name the columns under the diagram ("input", "layer 1", ...) in ``fontsize`` points.

    Returns
    -------
    list of ndarray, each (width, 2): node positions per column (inputs first), in the axes' data coordinates.
    """
    widths = [input_size, *layer_sizes]
    tallest = max(widths)
    positions = [np.stack([np.full(w, float(c)), (np.arange(w) - (w - 1) / 2) * (tallest / max(w, 1)) / tallest],
                          axis=1) for c, w in enumerate(widths)]
    for left, right in zip(positions[:-1], positions[1:]):
        lines = [[a, b] for a in left for b in right]
        ax.add_collection(LineCollection(lines, colors="#cccccc", linewidths=0.3, zorder=1))
    ax.scatter(*positions[0].T, s=node_size, color="black", zorder=2)
    for index, column in enumerate(positions[1:]):
        ax.scatter(*column.T, s=node_size, color=colours[index % len(colours)], zorder=2)
    if highlight is not None:
        layer, node = highlight
        ax.scatter(*positions[layer + 1][node], s=node_size * 4, facecolor=colours[layer % len(colours)],
                   edgecolor="black", linewidth=1.5, zorder=3)
    if labels:
        for column in range(len(widths)):
            ax.text(column, -0.56, "input" if column == 0 else f"layer {column}", ha="center", va="top",
                    fontsize=fontsize, color="black" if column == 0 else colours[(column - 1) % len(colours)])
    ax.set_xlim(-0.5, len(widths) - 0.5)
    ax.set_ylim(-0.68 if labels else -0.6, 0.6)
    ax.axis("off")
    return positions


def figure_png(fig, dpi: int = 80) -> bytes:
    """Render a figure to PNG bytes and close it: a 256-colour palette PNG (slider frames are inlined in the page).

    Line art has few colours, so the palette image looks the same and is 2-3 times smaller than the RGBA rendering
    (chapter 1's 45 Fig 8 frames: 117 kB -> 47 kB each). With ``SPLINE_READABILITY_REPORT`` set (the notebook tests),
    the figure's readability at ``dpi`` is recorded first (:func:`spline_utils.plot.readability.record_figure`).
    """
    record_figure(fig, "slider frame", dpi=dpi)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    palette = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    compact = io.BytesIO()
    palette.save(compact, format="PNG", optimize=True)
    return compact.getvalue()


# Layer-by-layer views (chapter 1: Figs 1(a) and 8).
FAINT_FILL = "#f3f3f3"  # the one neutral tone of the paper's Fig 1(a) planes


def draw_layer_view(ax, partition: Partition, layer: int, classes=None, title: str | None = None):
    """The partition after hidden layer ``layer`` as the paper's Fig 1(a) draws it.

    One faint neutral fill, the splines of the earlier layers in grey, this layer's new splines dark; for
    ``layer == len(partition.layers)`` (the classifier) every hidden spline is grey and the decision boundary
    (``classes`` as in :meth:`Partition.boundary_segments`) is blue.
    """
    n_hidden = len(partition.layers)
    layer = check_integer("layer", layer, minimum=0, maximum=n_hidden)  # n_hidden: the classifier
    setup_axes(ax, partition.bounds, title)
    draw_regions(ax, partition.polygons_after(min(layer, n_hidden - 1)), colours=FAINT_FILL)
    draw_previous_splines(ax, partition, layer, linewidth=1.1)
    if layer < n_hidden:
        draw_layer_splines(ax, partition, layer, color=NEW_DARK, linewidth=1.8)
    else:
        draw_boundary(ax, partition, classes, color=SPLINE_BLUE, linewidth=2.8)
    return ax


def draw_previous_splines(ax, partition: Partition, layer: int, color=OLD_GREY, linewidth: float = 0.6) -> list:
    """The splines of hidden layers ``0 .. layer - 1``: the partition that layer ``layer`` subdivides."""
    return [draw_layer_splines(ax, partition, earlier, color=color, linewidth=linewidth)
            for earlier in range(min(layer, len(partition.layers)))]


def link_to_spline(fig, ax_from, point, ax_to, segments: np.ndarray, **kwargs):
    """A dotted line from ``point`` (data coordinates of ``ax_from``, e.g. a node of :func:`draw_network`) to the
    middle segment of a spline drawn in ``ax_to``; ``None`` if the spline has no segment."""
    if not len(segments):
        return None
    middle = segments[len(segments) // 2].mean(axis=0)
    style = dict(linestyle=":", color="black", linewidth=1.2) | kwargs
    return fig.add_artist(matplotlib.patches.ConnectionPatch(xyA=point, coordsA=ax_from.transData, xyB=middle,
                                                             coordsB=ax_to.transData, **style))
