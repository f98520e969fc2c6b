"""Exact partitions of one canvas window through a residual network at chosen epochs, and what changed between them.

:func:`partitions_at` partitions the same window after each epoch (timed); :func:`check_exact` holds a partition
against the network's own float64 forward pass; :func:`.partition_changes.spline_moves` says how far each exact edge's
splines moved since another epoch's partition, and :func:`spline_moves_figure` draws the edges coloured by that
distance, next to the code distance in the window epoch by epoch (:func:`window_distances`).
"""
from __future__ import annotations

import copy
import time
from typing import Callable, Sequence

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
import numpy as np
import torch
import torch.nn as nn

from spline_utils import plot
from spline_utils.plot import training as plot_training
from spline_utils.reading.oracle import activation_codes
from spline_utils.early_bird.codes import network_distance, probe_codes
from spline_utils.engine.partition2d import Partition, partition2d
from spline_utils.experiments.canvas_trajectory import mark_schedule
from spline_utils.experiments.mnist_canvas import NINE, SIX
from spline_utils.experiments.partition_changes import SplineMoves

CURVE_COLOUR = plot.SPLINE_BLUE
# partition2d's budget for per-region maps: half its default (the window is cut in tiles) kept chapter 3's ResNet
# windows of 25k regions at 1.9 GB peak instead of 3.0 GB, at about the same speed
MAX_BYTES = 2**29
# the edges of spline_moves_figure: within the first bound of their place the epoch before (grey), moved up to the
# second (light), farther (dark), on a spline new in the window (darkest)
IN_PLACE_GREY = "#ababab"
MOVE_COLOURS = ("#5ec962", "#21918c", "#440154")  # viridis: short move, long move, new in the window
EDGE_WIDTH_PER_REGION_SIDE = 0.2  # an edge's width, as a share of the mean region's side in the panel


def partitions_at(ticket: Callable[[int], nn.Module], epochs: Sequence[int], window, plane,
                  max_bytes: int = MAX_BYTES) -> tuple[list, list]:
    """``partition2d(ticket(e), window, plane=plane, max_bytes=max_bytes)`` for each epoch ``e``, and the seconds
    each took."""
    partitions, seconds = [], []
    for epoch in epochs:
        started = time.perf_counter()
        partitions.append(partition2d(ticket(epoch), window, plane=plane, max_bytes=max_bytes))
        seconds.append(time.perf_counter() - started)
    return partitions, seconds


def check_exact(partition: Partition, model: nn.Module, plane, sample: int = 300, seed: int = 0) -> tuple[bool, float]:
    """The model's own float64 forward pass at an interior point of ``sample`` random regions of ``partition``.

    Returns
    -------
    (bool, float)
        Whether its ReLU codes equal the regions' codes, and the largest ``|output - region's affine map|`` at the
        points relative to the largest ``|output|``.
    """
    regions = np.random.default_rng(seed).permutation(partition.num_regions)[:sample]
    points = partition.interior_points()[regions]
    inputs = plane(points)  # float64 images
    codes_agree = np.array_equal(activation_codes(model, inputs).numpy(), partition.codes[regions])
    slopes, offsets = partition.affine_maps()
    on_maps = np.einsum("rok,rk->ro", slopes[regions], points) + offsets[regions]
    with torch.no_grad():
        outputs = copy.deepcopy(model).double().eval()(inputs).numpy()
    return codes_agree, float(np.abs(on_maps - outputs).max() / np.abs(outputs).max())


def window_distances(ticket: Callable[[int], nn.Module], epochs: int, probe: torch.Tensor) -> tuple:
    """The detector's distance (BatchNorm-output codes on ``probe``) of every epoch ``1..epochs`` to the one before
    (epoch 0 is the initialization) and to the last; two arrays of shape (epochs,)."""
    history = [probe_codes(ticket(epoch), probe) for epoch in range(epochs + 1)]
    to_previous = np.array([network_distance(history[e], history[e - 1]) for e in range(1, epochs + 1)])
    to_final = np.array([network_distance(history[e], history[-1]) for e in range(1, epochs + 1)])
    return to_previous, to_final


def draw_window_distances(ax, to_previous: np.ndarray, to_final: np.ndarray, eb_epoch: int | None,
                          drops: Sequence[int], title: str) -> None:
    """The two curves of :func:`window_distances` over epochs, the EB epoch and the learning-rate drops marked."""
    epochs = np.arange(1, len(to_previous) + 1)
    ax.plot(epochs, to_previous, "o-", color=CURVE_COLOUR, markersize=2.5, linewidth=1, label="to the epoch before")
    ax.plot(epochs, to_final, "s-", color="#444444", markersize=2.5, linewidth=1, label="to the last epoch")
    mark_schedule(ax, eb_epoch, drops)
    ax.set_ylim(0, None)
    ax.set(xlabel="epoch", ylabel="code distance in the window", title=title)
    ax.legend(loc="upper right", fontsize=9, frameon=False)


def edge_width(num_regions: int, panel_points: float) -> float:
    """The line width (points) of a partition's edges in a panel ``panel_points`` wide: a fixed share of the mean
    region's side, so that a panel of any density shows its regions' colours, not a solid fill; 0.1 to 1 point."""
    return float(np.clip(EDGE_WIDTH_PER_REGION_SIDE * panel_points / np.sqrt(max(num_regions, 1)), 0.1, 1.0))


def move_classes(moves: SplineMoves, bounds: Sequence[float]) -> np.ndarray:
    """For each edge of ``moves``: 0 if its splines moved at most ``bounds[0]``, 1 up to ``bounds[1]``, 2 farther,
    3 if one of them is new in the window."""
    first, second = bounds
    if not 0 < first < second:
        raise ValueError(f"need 0 < bounds[0] < bounds[1], got {tuple(bounds)}")
    classes = np.digitize(moves.distances, [first, second], right=True)
    classes[np.isinf(moves.distances)] = 3
    return classes


def spline_moves_figure(partitions: Sequence[Partition], moves: Sequence[SplineMoves], bounds: Sequence[float],
                        titles: Sequence[str], suptitle: str, classes=(SIX, NINE), columns: int = 2,
                        extra_panel: Callable | None = None) -> plt.Figure:
    """One panel per partition: every interior edge, coloured by how far its splines moved since the partition it
    was compared with (:func:`move_classes` of ``bounds``, in the slice's coordinates): grey in place, green and
    teal moved, dark purple new in the window; its boundary ``{f_i = f_j}`` (red) and the last partition's (pink
    band). Edge widths follow :func:`edge_width`.

    Panels run in rows of ``columns`` (2 keeps each panel readable on a phone); ``extra_panel(ax)``, if given, draws
    into the cell after the last partition. A legend under the panels names the four colours.
    """
    if not len(partitions) == len(moves) == len(titles):
        raise ValueError("need one SplineMoves and one title per partition")
    rows = -(-(len(partitions) + (extra_panel is not None)) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(8, 3.9 * rows + 0.8), layout="constrained", squeeze=False)
    final = partitions[-1]
    colours = (IN_PLACE_GREY, *MOVE_COLOURS)
    for ax, partition, moved, title in zip(axes.flat, partitions, moves, titles):
        panel_points = ax.get_position().width * fig.get_figwidth() * 72
        width = edge_width(partition.num_regions, panel_points)
        kind = move_classes(moved, bounds)
        for value, colour in enumerate(colours):
            plot.draw_segments(ax, moved.segments[kind == value], colour, width, zorder=1 + value)
        plot.draw_boundary(ax, final, classes=classes, color=plot_training.FINAL_PINK, linewidth=6, alpha=0.8, zorder=5)
        plot.draw_boundary(ax, partition, classes=classes, linewidth=1.8, zorder=6)
        plot.setup_axes(ax, partition.bounds, title=title)
    spare = list(axes.flat[len(partitions):])
    if extra_panel is not None:
        extra_panel(spare.pop(0))
    for ax in spare:
        ax.set_axis_off()
    side = max(final.bounds[1] - final.bounds[0], final.bounds[3] - final.bounds[2])
    first, second = (f"{bound / side:.0%}" for bound in bounds)
    labels = (f"in place (within {first} of the side)", f"moved {first} to {second}", f"moved more than {second}",
              "new in the window")
    handles = [Line2D([], [], color=colour, linewidth=3) for colour in colours]
    handles += [Line2D([], [], color=plot.BOUNDARY_RED, linewidth=1.8),
                Line2D([], [], color=plot_training.FINAL_PINK, linewidth=5)]
    labels += (f"{classes[0]}-vs-{classes[1]} boundary", "final boundary")
    fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=11, frameon=False)
    fig.suptitle(suptitle)
    return fig
