"""Drawing partitions, splines, decision boundaries and distance matrices in the paper's colours."""
from __future__ import annotations

import io

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection, PolyCollection

from .partition import Partition

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
    """Fill convex regions (a :class:`~spline_utils.polygons.Polygons`); random pastel colours by default."""
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


def draw_distance_matrix(ax, distances: np.ndarray, early_bird_epoch: int | None = None, lookback: int = 3,
                         normalize: bool = True, colorbar: bool = True, title: str | None = None, label: bool = True):
    """An epoch-by-epoch distance matrix as in the paper's Fig 5.

    Parameters
    ----------
    distances : ndarray, shape (n_epochs, n_epochs)
        Entry ``[i, j]`` compares the end of epoch ``i + 1`` with the end of epoch ``j + 1``; the axes show epochs
        1..n_epochs.
    early_bird_epoch : int, optional
        The detected epoch (1-based, as :func:`spline_utils.early_bird.spline_early_bird_epoch` returns it), marked
        as in the paper: a red dashed box over the look-back window and dashed lines to the matrix edges.
    lookback : int
        Width of the look-back window the box covers.
    normalize : bool
        Min-max normalize (0 yellow, 1 dark purple: reversed viridis), as the paper does.

    Returns
    -------
    matplotlib.image.AxesImage
    """
    matrix = np.asarray(distances, dtype=float)
    n = len(matrix)
    if normalize and matrix.max() > matrix.min():
        matrix = (matrix - matrix.min()) / (matrix.max() - matrix.min())
    image = ax.imshow(matrix, cmap="viridis_r", vmin=0, vmax=1 if normalize else None, interpolation="nearest",
                      extent=(0.5, n + 0.5, n + 0.5, 0.5))
    if early_bird_epoch is not None:
        low = early_bird_epoch - lookback - 0.5
        ax.add_patch(matplotlib.patches.Rectangle((low, low), lookback + 1, lookback + 1, fill=False,
                                                  edgecolor="red", linestyle="--", linewidth=1.2))
        edge = early_bird_epoch + 0.5
        ax.plot([edge, n + 0.5], [edge, edge], "r--", linewidth=1.0)
        ax.plot([edge, edge], [edge, n + 0.5], "r--", linewidth=1.0)
        if label:
            ax.text(early_bird_epoch + 1.5, edge + n * 0.08, str(early_bird_epoch), color="red", fontsize=15,
                    clip_on=True)
    ax.set_xlim(0.5, n + 0.5)
    ax.set_ylim(n + 0.5, 0.5)
    ax.set_xlabel("epoch")
    ax.set_ylabel("epoch")
    if title:
        ax.set_title(title)
    if colorbar:
        plt.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return image


def draw_loss_trajectory(ax, loss_x, losses, snapshot_x, draw_inset, top_row: int = 3) -> list:
    """Loss curve with one inset per snapshot, in the layout of the paper's Fig 4.

    The first ``top_row`` insets sit in a row at the top left, the later ones in a lower row at the right, with room
    for each inset's title; an arrow links each inset to a red dot on the curve.

    Parameters
    ----------
    ax : matplotlib Axes
    loss_x, losses : array-like, shape (n,)
        Where the loss was recorded (iterations or epochs) and its values.
    snapshot_x : sequence of float, length at most ``top_row + 6``
        Where the insets were taken; their loss is interpolated on the curve.
    draw_inset : callable ``(inset_ax, index) -> None``
        Draws snapshot ``index`` into its inset axes.

    Returns
    -------
    list of the inset Axes, in snapshot order
    """
    n_lower = len(snapshot_x) - top_row
    if not 0 <= top_row <= 6 or n_lower > 6:
        raise ValueError(f"room for at most 6 insets per row: got {len(snapshot_x)} snapshots with top_row={top_row}")
    losses = np.asarray(losses, dtype=float)
    ax.plot(loss_x, losses, color="blue", linewidth=1.2)
    loss_at = np.interp(snapshot_x, loss_x, losses)
    ax.scatter(snapshot_x, loss_at, color="red", zorder=3, s=25)
    ax.set_ylim(-0.05 * losses.max(), 1.9 * losses.max())
    width, step, height = 0.14, 0.15, 0.27
    insets = []
    for index, (x_value, y_value) in enumerate(zip(snapshot_x, loss_at)):
        in_top_row = index < top_row
        left = 0.12 + step * index if in_top_row else 0.98 - step * (n_lower - (index - top_row))
        bottom = 0.68 if in_top_row else 0.30  # the gap leaves room for the lower row's titles
        inset = ax.inset_axes([left, bottom, width, height])
        draw_inset(inset, index)
        ax.annotate("", xy=(x_value, y_value), xycoords="data", xytext=(left + width / 2, bottom),
                    textcoords="axes fraction", arrowprops=dict(arrowstyle="->", color="black", linewidth=0.9))
        insets.append(inset)
    return insets


def draw_network(ax, layer_sizes, colours=LAYER_COLOURS, highlight: tuple | None = None, input_size: int = 2,
                 node_size: float = 30.0) -> list[np.ndarray]:
    """A small network diagram: input nodes, then one column per hidden layer, fully connected.

    Parameters
    ----------
    layer_sizes : sequence of int
        Hidden layer widths.
    highlight : (layer, node), optional
        A node drawn large with a black edge (0-based layer and node).

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
    ax.set_xlim(-0.5, len(widths) - 0.5)
    ax.set_ylim(-0.6, 0.6)
    ax.axis("off")
    return positions


def figure_png(fig, dpi: int = 80) -> bytes:
    """Render a figure to PNG bytes and close it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


# Chapter 2: what pruning does to the partition (Figs 1(b), 1(c) and 3).
def draw_pruned_partition(ax, partition: Partition, title: str | None = None, note: str | None = None,
                          reference: np.ndarray | None = None, bounds=None):
    """A panel of the paper's Fig 1(b)/(c): first-layer splines grey, the decision boundary blue.

    Parameters
    ----------
    partition : Partition
        Of a network with a 2-D input and two outputs.
    title, note : str, optional
        Above and below the panel (e.g. the measured squareness).
    reference : ndarray, shape (n, 2, 2), optional
        Another boundary's segments (e.g. the unpruned network's), drawn thin and dashed so a change shows.
    bounds : tuple (xmin, xmax, ymin, ymax), optional
        The window; the partition's bounds by default.
    """
    setup_axes(ax, partition.bounds if bounds is None else bounds, title)
    draw_layer_splines(ax, partition, 0, color=OLD_GREY, linewidth=1.0)
    if reference is not None:
        draw_segments(ax, reference, color=SPLINE_BLUE, linewidth=1.2, linestyles="--", alpha=0.45)
    draw_boundary(ax, partition, color=SPLINE_BLUE, linewidth=2.6)
    if note:
        ax.set_xlabel(note)
    return ax


def pruning_row(partitions, titles, notes, references=None, label: str | None = None, width: float = 8.0):
    """One row of :func:`draw_pruned_partition` panels, ``width`` inches wide, with a label under it.

    ``references`` gives one reference boundary (or ``None``) per panel. Returns the figure.
    """
    count = len(partitions)
    fig, axes = plt.subplots(1, count, figsize=(width, width / count + 0.9), squeeze=False)
    references = [None] * count if references is None else references
    for ax, partition, title, note, reference in zip(axes[0], partitions, titles, notes, references):
        draw_pruned_partition(ax, partition, title, note, reference)
    if label:
        fig.suptitle(label, y=0.01, va="bottom", fontweight="bold")
    fig.tight_layout(rect=(0, 0.06 if label else 0, 1, 1))
    return fig


SLICE_LAYER_COLOURS = (LIGHT_BLUE, LAYER2_GREEN)  # Fig 3: layer 1 light blue, layer 2 green


def draw_slice_splines(ax, layer_segments, boundary: np.ndarray, bounds, bold_segments=None,
                       bends: np.ndarray | None = None, title: str | None = None, legend: bool = True,
                       faint_width: float = 0.35, faint_alpha: float = 0.5):
    """Every hidden layer's splines over a slice, faint; chosen pieces (e.g. at the boundary's vertices) bold.

    Parameters
    ----------
    layer_segments : sequence of ndarray, each (n_l, 2, 2)
        The splines of hidden layers 1, 2, ... (e.g. :meth:`Partition.layer_spline_segments`), drawn in
        :data:`SLICE_LAYER_COLOURS`.
    boundary : ndarray, shape (m, 2, 2)
        The decision boundary, red.
    bounds : tuple (xmin, xmax, ymin, ymax)
        The window (a zoom shows the bends).
    bold_segments : sequence of ndarray, each (k_l, 2, 2), optional
        Per layer, spline pieces to draw bold in the layer's colour (e.g. short strokes through the boundary's
        vertices).
    bends : ndarray, shape (b, 2), optional
        Vertices of the boundary (where it may turn), drawn as black dots.
    legend : bool
        A legend naming the layers, the bold pieces and the boundary, above the panel.

    Returns
    -------
    list of matplotlib Line2D
        The legend's handles (for one legend shared by several panels, e.g. ``fig.legend(handles=...)``).
    """
    setup_axes(ax, bounds, title)
    handles = []
    for layer, segments in enumerate(layer_segments):
        colour = SLICE_LAYER_COLOURS[layer % len(SLICE_LAYER_COLOURS)]
        draw_segments(ax, segments, color=colour, linewidth=faint_width, alpha=faint_alpha)
        handles.append(matplotlib.lines.Line2D([], [], color=colour, linewidth=1.5, label=f"layer {layer + 1} splines"))
    if bold_segments is not None:
        for layer, segments in enumerate(bold_segments):
            colour = SLICE_LAYER_COLOURS[layer % len(SLICE_LAYER_COLOURS)]
            draw_segments(ax, segments, color=colour, linewidth=3.0, zorder=3)
            handles.append(matplotlib.lines.Line2D([], [], color=colour, linewidth=3.0,
                                                   label=f"layer {layer + 1} spline at a vertex"))
    draw_segments(ax, boundary, color=BOUNDARY_RED, linewidth=2.0, zorder=4)
    handles.append(matplotlib.lines.Line2D([], [], color=BOUNDARY_RED, linewidth=2.0, label="decision boundary"))
    if bends is not None and len(bends):
        ax.scatter(*np.asarray(bends).T, s=10, color="black", zorder=5)
        handles.append(matplotlib.lines.Line2D([], [], color="black", marker="o", linestyle="", markersize=3.5,
                                               label="vertex of the boundary"))
    if legend:
        ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.01), ncol=2, frameon=False,
                  borderaxespad=0, handlelength=1.6, columnspacing=1.0)
    return handles


def draw_canvas_mosaic(ax, image_a, image_b, steps: int = 5, bounds=(0.0, 1.0, 0.0, 1.0), fill: float = 0.92):
    """The paper's grid of images along a slice: ``a * image_a + b * image_b`` at ``steps x steps`` points.

    Each tile sits at its ``(a, b)`` position; all tiles share one grey scale whose zero is white, so images
    with a zero background (pixels in [0, 1]) share one background.

    Parameters
    ----------
    image_a, image_b : array-like, shape (H, W) or (1, H, W)
        Non-negative images (e.g. MNIST pixels in [0, 1]).
    fill : float
        Fraction of a grid cell a tile covers.
    """
    image_a, image_b = (np.asarray(image, dtype=float).reshape(np.shape(image)[-2:]) for image in (image_a, image_b))
    xmin, xmax, ymin, ymax = bounds
    a_values, b_values = np.linspace(xmin, xmax, steps), np.linspace(ymin, ymax, steps)
    cell_a, cell_b = (xmax - xmin) / max(steps - 1, 1), (ymax - ymin) / max(steps - 1, 1)
    tiles = [(a, b, a * image_a + b * image_b) for a in a_values for b in b_values]
    vmax = max(tile.max() for _, _, tile in tiles)
    for a, b, tile in tiles:
        half_a, half_b = fill * cell_a / 2, fill * cell_b / 2
        ax.imshow(tile, cmap="gray_r", vmin=0, vmax=vmax, extent=(a - half_a, a + half_a, b - half_b, b + half_b),
                  interpolation="nearest")
    ax.set_xlim(xmin - cell_a / 2, xmax + cell_a / 2)
    ax.set_ylim(ymin - cell_b / 2, ymax + cell_b / 2)
    ax.set_aspect("equal")
    ax.set_xticks(a_values)
    ax.set_yticks(b_values)
    return ax
