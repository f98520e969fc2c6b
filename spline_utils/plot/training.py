"""Figures of training: spline trajectories over snapshots (Figs 4, 14) and epoch-by-epoch distance matrices (Figs 5,
13, 15), in the paper's colours (:mod:`spline_utils.plot`)."""
from __future__ import annotations

import matplotlib
import matplotlib.patheffects
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from spline_utils.engine.partition import Partition
from spline_utils.plot.drawing import BOUNDARY_RED, SPLINE_BLUE, draw_boundary, draw_segments, setup_axes

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
