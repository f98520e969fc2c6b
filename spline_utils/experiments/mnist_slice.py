"""Chapter 2's Fig 3: the exact partition of a small ConvNet on a 2-D slice of MNIST through a 6 and a 9.

:class:`SliceView` holds one network's partition of the slice, its splines and the boundary's vertices with the
splines that carry them; :func:`draw_fig3` and :func:`draw_window_frame` draw them with a zoom on a window.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from spline_utils import pruning
from spline_utils.plot import pruning as plot_pruning
from spline_utils.reading.hooks import eval_with_hooks
from spline_utils.experiments.spline_vertices import BoundaryBends, crossing_nodes

CLASSES = (6, 9)


def first_correct(models, images: torch.Tensor, labels: torch.Tensor, label: int) -> int | None:
    """Index of the first image of ``label`` that every model classifies correctly (None if there is none)."""
    candidates = (labels == label).nonzero().flatten()
    correct = []
    for model in models:
        with eval_with_hooks(model):  # eval mode, no gradients, the model's mode restored afterwards
            correct.append(model(images[candidates]).argmax(1) == label)
    correct = torch.stack(correct)
    agreed = candidates[correct.all(0)]
    return int(agreed[0]) if len(agreed) else None


class SliceView:
    """One network on the slice: its partition, every layer's splines and the boundary's vertices.

    Attributes
    ----------
    partition : Partition
    model : nn.Module
    splines : list of ndarray, each (n_l, 2, 2)
        Every spline piece of each hidden layer.
    bends : BoundaryBends
        The vertices of ``{f_6 = f_9}`` and the splines through them (strokes of half-length ``stroke``).
    crossing : list of ndarray of int
        Per hidden layer, the nodes whose spline crosses the slice.
    """

    def __init__(self, partition, model, stroke: float, classes=CLASSES):
        self.partition, self.model, self.classes = partition, model, classes
        self.splines = [partition.layer_spline_segments(layer) for layer in range(len(partition.layer_sizes))]
        self.bends = BoundaryBends(partition, model, classes, stroke=stroke)
        self.crossing = [crossing_nodes(partition, layer) for layer in range(len(partition.layer_sizes))]
        self.boundary = partition.boundary_segments(classes)

    def draw(self, ax, window, bold: bool = True, title: str | None = None):
        """The splines (faint), the boundary (red) and, if ``bold``, the vertices and the strokes through them."""
        return plot_pruning.draw_slice_splines(
            ax, self.splines, self.boundary, window, bold_segments=self.bends.strokes if bold else None,
            bends=self.bends.vertices if bold else None, title=title, legend=False)

    def sharpest_bend(self) -> np.ndarray:
        """The boundary vertex where the boundary turns the most (the centre of a zoomed panel)."""
        best, centre = -1.0, np.array([0.5, 0.5])
        for line in self.partition.decision_boundary(self.classes):
            if len(line) < 3:
                continue
            heading = np.arctan2(*np.diff(line, axis=0)[:, ::-1].T)
            turn = np.abs((np.diff(heading) + np.pi) % (2 * np.pi) - np.pi)
            if turn.max() > best:
                best, centre = turn.max(), line[1 + np.argmax(turn)]
        return centre

    def windows_along_boundary(self, count: int) -> list[np.ndarray]:
        """Centres of ``count`` windows spread along the longest polyline of the boundary."""
        lines = self.partition.decision_boundary(self.classes)
        if not lines:
            return [np.array([0.5, 0.5])] * count
        line = max(lines, key=len)
        return [line[int(index)] for index in np.linspace(0, len(line) - 1, count + 2)[1:-1]]


def zoom_window(centre, half: float, bounds=(0.0, 1.0, 0.0, 1.0)) -> tuple:
    """A square window of half-width ``half`` around ``centre``, moved inside ``bounds``."""
    a = np.clip(centre[0], bounds[0] + half, bounds[1] - half)
    b = np.clip(centre[1], bounds[2] + half, bounds[3] - half)
    return (a - half, a + half, b - half, b + half)


def mark_window(ax, window) -> None:
    """A black box around ``window`` on a whole-slice panel."""
    ax.add_patch(plt.Rectangle((window[0], window[2]), window[1] - window[0], window[3] - window[2], fill=False,
                               edgecolor="black", linewidth=1.5, zorder=6))


def _label(ratio: float) -> str:
    return "unpruned" if ratio == 0 else f"{ratio:.0%} pruned"


def draw_fig3(views: dict, image_a, image_b, zoom: float, width: float = 8.0):
    """Fig 3: the canvas (top left), each network's whole slice (top) and a zoom on its sharpest bend (bottom).

    Parameters
    ----------
    views : dict of float -> SliceView
        Two networks, keyed by the fraction of channels pruned.
    image_a, image_b : torch.Tensor
        The images at the corners (1, 0) and (0, 1) of the slice.
    zoom : float
        Half-width of the zoomed windows.
    """
    fig = plt.figure(figsize=(width, width * 0.96))
    grid = fig.add_gridspec(2, 6, height_ratios=[1, 1.55])
    mosaic = fig.add_subplot(grid[0, 0:2])
    plot_pruning.draw_canvas_mosaic(mosaic, image_a, image_b, steps=5)
    mosaic.set_title("slice: $a x_6 + b x_9$")
    mosaic.set_xlabel("a")
    mosaic.set_ylabel("b")
    handles = []
    for column, (ratio, view) in enumerate(list(views.items())[:2]):
        channels = "-".join(map(str, pruning.layer_widths(view.model)))
        window = zoom_window(view.sharpest_bend(), zoom)
        whole = fig.add_subplot(grid[0, 2 + 2 * column:4 + 2 * column])
        view.draw(whole, view.partition.bounds, bold=False, title=f"{_label(ratio)} ({channels} ch.)")
        mark_window(whole, window)
        handles = view.draw(fig.add_subplot(grid[1, 3 * column:3 + 3 * column]), window,
                            title=f"{_label(ratio)}: zoom on the box")
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False, bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, 0.08, 1, 1), h_pad=0.5)
    return fig


def draw_window_frame(view: SliceView, centre, zoom: float, width: float = 8.0):
    """One slider frame: the whole slice with the window (left) and the window enlarged (right)."""
    fig, (whole, zoomed) = plt.subplots(1, 2, figsize=(width, width * 0.575), gridspec_kw={"width_ratios": [1, 1.2]})
    window = zoom_window(centre, zoom)
    view.draw(whole, view.partition.bounds, bold=False, title="unpruned, whole slice")
    mark_window(whole, window)
    handles = view.draw(zoomed, window, title=f"window at a = {centre[0]:.2f}, b = {centre[1]:.2f}")
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    return fig
