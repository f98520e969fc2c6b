"""The small CNN's splines on the 6-9 canvas along training: the paper's Fig 4(b) and the chapter's epoch slider.

:func:`cnn_trajectory_figure` draws the loss of every epoch, with the spline early-bird epoch and the learning-rate
drops marked, over one exact-partition panel per chosen epoch; :func:`epoch_frame` is one frame of the epoch
slider: the canvas's splines on a grid next to that epoch's row of the distance matrix.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from spline_utils import plot
from spline_utils.plot import training as plot_training
from spline_utils.early_bird.codes import canvas_fields
from spline_utils.engine.slices import grid_points
from spline_utils.experiments.mnist_canvas import NINE, SIX

LAYER_COLOURS = (plot.LIGHT_BLUE, plot.LAYER2_GREEN)  # the paper's Fig 4(b): layer 1 light blue, layer 2 green
EB_COLOUR = "#d62728"
DROP_GREY = "#7f7f7f"


def central_nodes(shape: tuple, positions: int = 2) -> list[int]:
    """Nodes (flattened C order) at the ``positions`` central positions of the middle row of every channel.

    Parameters
    ----------
    shape : tuple (C, H, W)
        A conv layer's pre-activation shape.
    """
    channels, height, width = shape
    if not 1 <= positions <= width:
        raise ValueError(f"positions must be between 1 and the width {width}, got {positions}")
    first = width // 2 - positions // 2
    return [c * height * width + (height // 2) * width + first + k for c in range(channels) for k in range(positions)]


def inset_epochs(epochs: int, eb_epoch: int | None, paper_epochs=(10, 20, 40, 70, 100, 130), paper_total=160) -> list:
    """The paper's inset epochs of Fig 4(b) scaled from ``paper_total`` to ``epochs``, the EB epoch and the last."""
    chosen = {max(1, round(epochs * e / paper_total)) for e in paper_epochs} | {epochs}
    if eb_epoch is not None:
        chosen.add(eb_epoch)
    return sorted(chosen)


def mark_schedule(ax, eb_epoch: int | None, drops: Sequence[int]) -> None:
    """Mark the spline EB epoch (red, dashed) and the learning-rate drops (grey, dotted) on an axis over epochs."""
    for number, drop in enumerate(drops):
        ax.axvline(drop + 0.5, color=DROP_GREY, linestyle=":", linewidth=1.2, zorder=0,
                   label="learning rate x0.1" if number == 0 else None)
    if eb_epoch is not None:
        ax.axvline(eb_epoch, color=EB_COLOUR, linestyle="--", linewidth=1.4, zorder=0,
                   label=f"spline EB (epoch {eb_epoch})")


def cnn_trajectory_figure(epoch_losses: Sequence[float], partitions: dict, eb_epoch: int | None,
                          drops: Sequence[int], title: str, classes=(SIX, NINE)) -> plt.Figure:
    """Fig 4(b): the mean loss of every epoch over one panel per partition, the EB epoch and the drops marked.

    Parameters
    ----------
    epoch_losses : sequence of float, length E
    partitions : dict of int -> Partition
        Exact partitions of the same canvas window after the given epochs; the last epoch's is the final network's,
        drawn as bands under every panel. Each panel draws the two central positions of every channel of the two
        conv layers (:func:`central_nodes`) and the boundary ``{f_i = f_j}``.
    eb_epoch : int or None
        The spline early-bird epoch; its panel's title says so.
    drops : sequence of int
        Epochs after which the learning rate dropped.
    """
    epochs = sorted(partitions)
    final = partitions[epochs[-1]]
    nodes = [central_nodes(layer.shape) for layer in final.layers]
    epoch_axis = np.arange(1, len(epoch_losses) + 1)
    fig = plt.figure(figsize=(9.2, 9.6))
    titles = [f"epoch {epoch}" + (" (EB)" if epoch == eb_epoch else " (final)" if epoch == epochs[-1] else "")
              for epoch in epochs]
    loss_ax, panels = plot_training.draw_loss_trajectory(
        fig, epoch_axis, epoch_losses, epochs,
        lambda ax, i: plot_training.draw_snapshot_splines(ax, partitions[epochs[i]], final, colours=LAYER_COLOURS,
                                                          nodes=nodes, classes=classes),
        titles, label="mean loss of the epoch")
    mark_schedule(loss_ax, eb_epoch, drops)
    for panel, epoch in zip(panels, epochs):
        if epoch == eb_epoch:
            panel.title.set_color(EB_COLOUR)
    plot_training.snapshot_legend(loss_ax, ["layer 1", "layer 2"], list(LAYER_COLOURS))
    loss_ax.set(xlabel="Epochs", ylabel="Loss", title=title)
    return fig


def draw_canvas_splines(ax, model, plane, resolution: int, classes=(SIX, NINE)) -> None:
    """Zero sets on the whole canvas [0, 1]^2 of the centre-position channels of the first two BN layers, and the
    boundary ``{f_i = f_j}``, contoured on a ``resolution``-square grid (sampled, not exact)."""
    bounds = (0.0, 1.0, 0.0, 1.0)
    fields, logits = canvas_fields(model, plane, bounds, resolution)
    xs, ys, _ = grid_points(bounds, resolution)
    for field, colour in zip(fields, LAYER_COLOURS):
        centre = field[:, :, :, field.shape[3] // 2, field.shape[4] // 2]
        for channel in range(centre.shape[2]):
            if centre[:, :, channel].min() < 0 < centre[:, :, channel].max():
                ax.contour(xs, ys, centre[:, :, channel].numpy(), levels=[0], colors=colour, linewidths=0.8)
    tie = (logits[:, :, classes[0]] - logits[:, :, classes[1]]).numpy()
    if tie.min() < 0 < tie.max():
        ax.contour(xs, ys, tie, levels=[0], colors=plot.BOUNDARY_RED, linewidths=1.5)
    plot.setup_axes(ax, bounds)


def epoch_frame(model, plane, matrix: np.ndarray, epoch: int, eb_epoch: int | None, threshold: float,
                lookback: int, resolution: int, title: str) -> plt.Figure:
    """One frame of the epoch slider: the canvas after ``epoch`` (left) and row ``epoch`` of ``matrix`` (right).

    The right panel plots ``d(epoch, e')`` for every ``e'``, the threshold dashed, and highlights the look-back
    epochs ``epoch - 1 .. epoch - lookback`` that the rule compares.
    """
    fig, (ax_canvas, ax_row) = plt.subplots(1, 2, figsize=(8, 3.5), gridspec_kw={"width_ratios": [1, 1.7]})
    draw_canvas_splines(ax_canvas, model, plane, resolution)
    ax_canvas.set_title(title)
    row = matrix[epoch - 1]
    epochs_axis = np.arange(1, len(matrix) + 1)
    ax_row.plot(epochs_axis, row, "o-", color="purple", markersize=3, linewidth=1)
    look_back = np.arange(max(1, epoch - lookback), epoch)
    if len(look_back):
        ax_row.axvspan(look_back[0] - 0.5, look_back[-1] + 0.5, color="orange", alpha=0.25)
        ax_row.plot(look_back, row[look_back - 1], "o", color="darkorange", markersize=7,
                    label=f"look-back: max {row[look_back - 1].max():.3f}")
    ax_row.axvline(epoch, color="grey", linewidth=0.8)
    ax_row.axhline(threshold, color="red", linestyle="--", linewidth=1, label=f"threshold {threshold}")
    fired = eb_epoch is not None and epoch >= eb_epoch
    ax_row.set_title(f"d({epoch}, e')" + (f": EB fired at epoch {eb_epoch}" if fired else ": not yet"))
    ax_row.set_ylim(0, max(matrix.max(), threshold) * 1.05)
    ax_row.set_xlabel("epoch e'")
    ax_row.legend(loc="upper right")
    fig.tight_layout()
    return fig
