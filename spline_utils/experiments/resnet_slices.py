"""Exact partitions of one canvas window through a residual network at chosen epochs, and what changed between them.

:func:`partitions_at` partitions the same window after each epoch (timed); :func:`check_exact` holds a partition
against the network's own float64 forward pass; :func:`code_change_map` says, point by point, how much of the
detector's codes changed since another network, and :func:`code_change_figure` draws it under each partition's
edges, next to the code distance in the window epoch by epoch (:func:`window_distances`); :func:`changes_between`
marks which exact edges moved by more than a tolerance (:mod:`.partition_changes`).
"""
from __future__ import annotations

import copy
import time
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn

from spline_utils import plot
from spline_utils.plot import training as plot_training
from spline_utils.reading.oracle import activation_codes
from spline_utils.early_bird.codes import network_distance, probe_codes
from spline_utils.engine.partition2d import Partition, partition2d
from spline_utils.engine.slices import grid_points
from spline_utils.experiments.canvas_trajectory import mark_schedule
from spline_utils.experiments.mnist_canvas import NINE, SIX
from spline_utils.experiments.partition_changes import EdgeChanges, edge_changes, interior_edges

CURVE_COLOUR = plot.SPLINE_BLUE


def partitions_at(ticket: Callable[[int], nn.Module], epochs: Sequence[int], window, plane) -> tuple[list, list]:
    """``partition2d(ticket(e), window, plane=plane)`` for each epoch ``e``, and the seconds each took."""
    partitions, seconds = [], []
    for epoch in epochs:
        started = time.perf_counter()
        partitions.append(partition2d(ticket(epoch), window, plane=plane))
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


def changes_between(partitions: Sequence[Partition], references: Sequence[nn.Module],
                    tolerance: float) -> list[EdgeChanges]:
    """:func:`.partition_changes.edge_changes` of each partition against the network ``references[i]``."""
    if len(partitions) != len(references):
        raise ValueError(f"need one reference network per partition, got {len(references)} for {len(partitions)}")
    return [edge_changes(partition, reference, tolerance) for partition, reference in zip(partitions, references)]


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


def code_change_map(model: nn.Module, reference: nn.Module, plane, window, resolution: int) -> np.ndarray:
    """At each point of a ``resolution``-square grid of ``window``, the detector's distance between the two networks'
    codes there: the mean over BN layers of the fraction of the layer's nodes whose code differs.

    Returns
    -------
    ndarray, shape (resolution, resolution)
        Row ``i``, column ``j`` is the grid point ``(xs[j], ys[i])`` of :func:`spline_utils.grid_points`.
    """
    _, _, points = grid_points(window, resolution)
    inputs = plane(points).float()
    ours, theirs = probe_codes(model, inputs), probe_codes(reference, inputs)
    per_layer = [(ours.unpack(layer) != theirs.unpack(layer)).mean(axis=1) for layer in range(ours.num_layers)]
    return np.mean(per_layer, axis=0).reshape(resolution, resolution)


def code_change_figure(partitions: Sequence[Partition], change_maps: Sequence[np.ndarray], titles: Sequence[str],
                       suptitle: str, classes=(SIX, NINE), columns: int = 2,
                       extra_panel: Callable | None = None) -> plt.Figure:
    """One panel per partition: where the codes changed since the previous panel (:func:`code_change_map`, one
    colour scale: 0 yellow, darker = more of the point's codes changed), the partition's edges over it (thin,
    white), its boundary ``{f_i = f_j}`` (red) and the last partition's (pink band).

    Panels run in rows of ``columns`` (2 keeps each panel readable on a phone); ``extra_panel(ax)``, if given, draws
    into the cell after the last partition.
    """
    if not len(partitions) == len(change_maps) == len(titles):
        raise ValueError("need one change map and one title per partition")
    rows = -(-(len(partitions) + (extra_panel is not None)) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(8, 3.9 * rows + 0.4), layout="constrained", squeeze=False)
    top = max(float(np.max(change)) for change in change_maps)
    final = partitions[-1]
    for ax, partition, change, title in zip(axes.flat, partitions, change_maps, titles):
        xmin, xmax, ymin, ymax = partition.bounds
        image = ax.imshow(change, cmap="viridis_r", vmin=0, vmax=top, origin="lower", interpolation="nearest",
                          extent=(xmin, xmax, ymin, ymax), zorder=0)
        edges, _ = interior_edges(partition)
        plot.draw_segments(ax, edges, "white", 0.25, alpha=0.6, zorder=1)
        plot.draw_boundary(ax, final, classes=classes, color=plot_training.FINAL_PINK, linewidth=6, zorder=2)
        plot.draw_boundary(ax, partition, classes=classes, linewidth=1.8, zorder=3)
        plot.setup_axes(ax, partition.bounds, title=title)
    spare = list(axes.flat[len(partitions):])
    if extra_panel is not None:
        extra_panel(spare.pop(0))
    for ax in spare:
        ax.set_axis_off()
    fig.colorbar(image, ax=axes[:, :], fraction=0.025, pad=0.01, shrink=0.6,
                 label="codes changed since the previous panel")
    fig.suptitle(suptitle)
    return fig
