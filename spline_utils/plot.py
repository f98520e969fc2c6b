"""Drawing partitions, splines, decision boundaries and distance matrices in the paper's colours."""
from __future__ import annotations

import io

import matplotlib
import matplotlib.patheffects
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection, PolyCollection

from .partition import Partition
from .readability import record_figure

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
    """Fill convex regions (a :class:`~spline_utils.polygons.Polygons`); random pastel colours by default.

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


# Figs 4 and 14: the final network under every snapshot, wide and light, so a snapshot's lines that already sit
# where they end up run inside these bands.
FINAL_GREY = "#c8c8c8"
FINAL_PINK = "#f6a6a6"


def draw_distance_matrix(ax, distances: np.ndarray, early_bird_epoch: int | None = None, lookback: int = 3,
                         normalize: bool = True, vmax: float | None = None, colorbar: bool = True,
                         title: str | None = None, label: bool = True):
    """An epoch-by-epoch distance matrix as in the paper's Fig 5.

    Parameters
    ----------
    distances : ndarray, shape (n_epochs, n_epochs)
        Entry ``[i, j]`` compares the end of epoch ``i + 1`` with the end of epoch ``j + 1``; the axes show epochs
        1..n_epochs.
    early_bird_epoch : int, optional
        The detected epoch (1-based, as :func:`spline_utils.early_bird.spline_early_bird_epoch` returns it), marked
        as in the paper: a red dashed box over the look-back window and dashed lines to the matrix edges. Its
        number is written at the top of the vertical line, in the upper triangle, away from the (yellow) diagonal.
    lookback : int
        Width of the look-back window the box covers.
    normalize : bool
        Min-max normalize (0 yellow, 1 dark purple: reversed viridis), as the paper does.
    vmax : float, optional
        Without normalization, the top of the colour scale (0 is the bottom); give several panels the same ``vmax``
        to compare them on one scale. Default: the largest entry.
    colorbar : bool
        Add a colorbar beside ``ax``.
    title : str, optional
    label : bool
        Write the EB epoch next to its box.

    Returns
    -------
    matplotlib.image.AxesImage
    """
    matrix = np.asarray(distances, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"distances must be a square (E, E) matrix, got shape {matrix.shape}")
    if normalize and vmax is not None:
        raise ValueError("vmax sets the scale of raw distances: pass normalize=False with it")
    n = len(matrix)
    if normalize and matrix.max() > matrix.min():
        matrix = (matrix - matrix.min()) / (matrix.max() - matrix.min())
    top = 1.0 if normalize else (matrix.max() if vmax is None else vmax)
    image = ax.imshow(matrix, cmap="viridis_r", vmin=0, vmax=top, interpolation="nearest",
                      extent=(0.5, n + 0.5, n + 0.5, 0.5))
    if early_bird_epoch is not None:
        low = early_bird_epoch - lookback - 0.5
        ax.add_patch(matplotlib.patches.Rectangle((low, low), lookback + 1, lookback + 1, fill=False,
                                                  edgecolor="red", linestyle="--", linewidth=1.2))
        edge = early_bird_epoch + 0.5
        ax.plot([edge, n + 0.5], [edge, edge], "r--", linewidth=1.0)
        ax.plot([edge, edge], [edge, n + 0.5], "r--", linewidth=1.0)
        if label:  # at the top of the vertical line, on the side with room: rows < EB < columns, off the diagonal
            room_right = edge + 0.15 * n < n + 0.5
            ax.annotate(str(early_bird_epoch), (edge, 0.5), xytext=(4 if room_right else -4, -3),
                        textcoords="offset points", ha="left" if room_right else "right", va="top", color="red",
                        fontsize=14, fontweight="bold",
                        path_effects=[matplotlib.patheffects.withStroke(linewidth=2.5, foreground="white")])
    ax.set_xlim(0.5, n + 0.5)
    ax.set_ylim(n + 0.5, 0.5)
    ax.set_xlabel("epoch")
    ax.set_ylabel("epoch")
    if title:
        ax.set_title(title)
    if colorbar:
        plt.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return image


def draw_loss_trajectory(fig, loss_x, losses, snapshot_x, draw_panel, titles, columns: int = 4, noisy=None,
                         label: str = "loss", noisy_label: str | None = None, loss_height: float = 1.5) -> tuple:
    """A loss curve above a grid of snapshot panels: the paper's Fig 4, with panels large enough to read.

    Snapshot ``i`` is a red dot numbered ``i + 1`` on the curve and the panel titled ``(i + 1) titles[i]`` below it,
    in rows of ``columns`` panels; grid cells left over stay empty.

    Parameters
    ----------
    fig : matplotlib Figure
        An empty figure; its size sets the panels' size.
    loss_x, losses : array-like, shape (n,)
        The curve the dots sit on (iterations or epochs, and the loss there).
    snapshot_x : sequence of float, length m >= 1
        Where the snapshots were taken; their loss is interpolated on the curve.
    draw_panel : callable ``(ax, index) -> None``
        Draws snapshot ``index`` into its panel.
    titles : sequence of str, length m
        Each panel's title after its number, e.g. ``"iteration 500"``.
    columns : int
        Panels per row.
    noisy : pair of array-like, optional
        ``(x, y)`` of a raw trace (e.g. every mini-batch loss) drawn thin and light behind the curve.
    label, noisy_label : str
        Legend labels of the curve and of the raw trace.
    loss_height : float
        Height of the loss axes relative to one row of panels.

    Returns
    -------
    (loss Axes, list of the m panel Axes in snapshot order)
    """
    snapshot_x = [float(x) for x in snapshot_x]
    if not snapshot_x or len(titles) != len(snapshot_x):
        raise ValueError(f"need at least one snapshot and one title per snapshot; got {len(snapshot_x)} snapshots "
                         f"and {len(titles)} titles")
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    losses = np.asarray(losses, dtype=float)
    rows = -(-len(snapshot_x) // columns)
    grid = fig.add_gridspec(1 + rows, columns, height_ratios=[loss_height] + [1] * rows, hspace=0.45, wspace=0.12)
    loss_ax = fig.add_subplot(grid[0, :])
    if noisy is not None:
        loss_ax.plot(*noisy, color="#9ab8e8", linewidth=0.5, zorder=1, label=noisy_label)
    loss_ax.plot(loss_x, losses, color="blue", linewidth=1.4, zorder=2, label=label)
    loss_at = np.interp(snapshot_x, loss_x, losses)
    loss_ax.scatter(snapshot_x, loss_at, color="red", zorder=3, s=30)
    for number, (x_value, y_value) in enumerate(zip(snapshot_x, loss_at), start=1):
        loss_ax.annotate(str(number), (x_value, y_value), xytext=(0, 6), textcoords="offset points", ha="center",
                         va="bottom", color="red", fontweight="bold", zorder=4)
    panels = []
    for index, title in enumerate(titles):
        panel = fig.add_subplot(grid[1 + index // columns, index % columns])
        draw_panel(panel, index)
        panel.set_title(f"({index + 1}) {title}")
        panels.append(panel)
    return loss_ax, panels


def snapshot_legend(ax, layer_labels, colours, classes: str = "decision boundary"):
    """Legend of a :func:`draw_loss_trajectory` figure whose panels :func:`draw_snapshot_splines` drew.

    The labelled curves of ``ax``, then one entry per drawn layer (``layer_labels`` in ``colours``), the boundary,
    and the final network's bands; in two columns at the upper right, where a falling loss leaves room.
    """
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    for label, colour in zip(layer_labels, colours):
        handles.append(Line2D([], [], color=colour, linewidth=1.2))
        labels.append(label)
    handles += [Line2D([], [], color=BOUNDARY_RED, linewidth=1.6), Line2D([], [], color=FINAL_GREY, linewidth=4),
                Line2D([], [], color=FINAL_PINK, linewidth=5)]
    labels += [classes, "final splines", "final boundary"]
    return ax.legend(handles, labels, loc="upper right", ncol=2, frameon=False)


def draw_snapshot_splines(ax, partition: Partition, final: Partition | None = None, colours=(SPLINE_BLUE,),
                          nodes=None, classes=None, linewidth: float = 0.9):
    """One snapshot of a training run (Figs 4 and 14): its splines and boundary over those of the final network.

    The final network's splines are drawn first, wide and light grey, and its decision boundary wide and pink; the
    snapshot's splines (one colour per hidden layer) and its boundary (red) are drawn thin on top. Where the
    snapshot already has the final partition, each of its lines runs inside a grey (or pink) band; where it does
    not, the bands show where its lines will go.

    Parameters
    ----------
    partition, final : Partition
        The snapshot's and the final network's partitions of the same domain (``final`` optional).
    colours : sequence of colours
        One per hidden layer drawn, from layer 0 on.
    nodes : sequence of sequences of int, optional
        ``nodes[l]``: the nodes of layer ``l`` to draw (e.g. the centre position of each conv channel); all by
        default.
    classes : pair of int, optional
        The boundary ``{f_i = f_j}`` to draw (see :meth:`Partition.boundary_segments`).
    """
    def splines(source: Partition, layer: int) -> np.ndarray:
        chosen = range(source.layers[layer].num_nodes) if nodes is None else nodes[layer]
        parts = [source.spline_segments(layer, node) for node in chosen]
        return np.concatenate(parts) if parts else np.zeros((0, 2, 2))

    if final is not None:
        for layer in range(len(colours)):
            draw_segments(ax, splines(final, layer), FINAL_GREY, 3.2 * linewidth, zorder=1)
        draw_boundary(ax, final, classes, color=FINAL_PINK, linewidth=4.5 * linewidth, zorder=1)
    for layer, colour in enumerate(colours):
        draw_segments(ax, splines(partition, layer), colour, linewidth, zorder=2)
    draw_boundary(ax, partition, classes, color=BOUNDARY_RED, linewidth=1.6 * linewidth, zorder=3)
    setup_axes(ax, partition.bounds)


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
    """Render a figure to PNG bytes and close it.

    With ``SPLINE_READABILITY_REPORT`` set (the notebook tests), the figure's readability at ``dpi`` is recorded
    first (:func:`spline_utils.readability.record_figure`).
    """
    record_figure(fig, "slider frame", dpi=dpi)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


# Layer-by-layer views (chapter 1: Figs 1(a) and 8).
FAINT_FILL = "#f3f3f3"  # the one neutral tone of the paper's Fig 1(a) planes


def draw_layer_view(ax, partition: Partition, layer: int, classes=None, title: str | None = None):
    """The partition after hidden layer ``layer`` as the paper's Fig 1(a) draws it.

    One faint neutral fill, the splines of the earlier layers in grey, this layer's new splines dark; for
    ``layer == len(partition.layers)`` (the classifier) every hidden spline is grey and the decision boundary
    (``classes`` as in :meth:`Partition.boundary_segments`) is blue.
    """
    n_hidden = len(partition.layers)
    if not 0 <= layer <= n_hidden:
        raise ValueError(f"layer must be 0..{n_hidden} (the last is the classifier); got {layer}")
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
