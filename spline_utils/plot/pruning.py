"""Figures of pruning: partitions before and after node or weight pruning (Figs 1(b), 1(c)), and a ConvNet's splines
on a 2-D slice of image space with the canvas of images along it (Fig 3)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from spline_utils.engine.partition import Partition
from spline_utils.plot.drawing import (BOUNDARY_RED, LAYER2_GREEN, LIGHT_BLUE, OLD_GREY, SPLINE_BLUE, draw_boundary, draw_layer_splines,
                   draw_segments, setup_axes)

REFERENCE_BAND = "#f5b26b"  # a reference boundary, a wide light-orange band under the blue one (Fig 1(c))


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
        Another boundary's segments (e.g. the unpruned network's), drawn as a wide light-orange band under the blue
        boundary: it frames the blue line where the two coincide and stands apart where they part.
    bounds : tuple (xmin, xmax, ymin, ymax), optional
        The window; the partition's bounds by default.
    """
    setup_axes(ax, partition.bounds if bounds is None else bounds, title)
    draw_layer_splines(ax, partition, 0, color=OLD_GREY, linewidth=1.0)
    if reference is not None:
        draw_segments(ax, reference, color=REFERENCE_BAND, linewidth=6.0, capstyle="round")
    draw_boundary(ax, partition, color=SPLINE_BLUE, linewidth=2.6)
    if note:
        ax.set_xlabel(note)
    return ax


def pruning_row(partitions, titles, notes, references=None, label: str | None = None, width: float = 8.0,
                reference_label: str = "unpruned boundary"):
    """One row of :func:`draw_pruned_partition` panels, ``width`` inches wide, with a label under it.

    ``references`` gives one reference boundary (or ``None``) per panel; with any, a legend above the row names the
    band ``reference_label``. Returns the figure.
    """
    count = len(partitions)
    references = [None] * count if references is None else references
    with_legend = any(reference is not None for reference in references)
    legend_height, label_height = (0.35 if with_legend else 0.0), (0.3 if label else 0.0)  # inches
    height = width / count + 0.9 + legend_height
    fig, axes = plt.subplots(1, count, figsize=(width, height), squeeze=False)
    for ax, partition, title, note, reference in zip(axes[0], partitions, titles, notes, references):
        draw_pruned_partition(ax, partition, title, note, reference)
    if label:
        fig.suptitle(label, y=0.01, va="bottom", fontweight="bold")
    if with_legend:
        handles = [Line2D([], [], color=SPLINE_BLUE, linewidth=2.6, label="decision boundary"),
                   Line2D([], [], color=REFERENCE_BAND, linewidth=6.0, label=reference_label)]
        fig.legend(handles=handles, loc="upper center", ncol=2, frameon=False, bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, label_height / height, 1, 1 - legend_height / height))
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
        handles.append(Line2D([], [], color=colour, linewidth=1.5, label=f"layer {layer + 1} splines"))
    if bold_segments is not None:
        for layer, segments in enumerate(bold_segments):
            colour = SLICE_LAYER_COLOURS[layer % len(SLICE_LAYER_COLOURS)]
            draw_segments(ax, segments, color=colour, linewidth=3.0, zorder=3)
            handles.append(Line2D([], [], color=colour, linewidth=3.0, label=f"layer {layer + 1} spline at a vertex"))
    draw_segments(ax, boundary, color=BOUNDARY_RED, linewidth=2.0, zorder=4)
    handles.append(Line2D([], [], color=BOUNDARY_RED, linewidth=2.0, label="decision boundary"))
    if bends is not None and len(bends):
        ax.scatter(*np.asarray(bends).T, s=10, color="black", zorder=5)
        handles.append(Line2D([], [], color="black", marker="o", linestyle="", markersize=3.5,
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
