"""Chapter 1's pictures of a partition built layer by layer: Fig 1(a) (flat and lifted) and Fig 8 (node by node)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from spline_utils import plot
from spline_utils.plot import surface3d as plot3d


def widest_spline(partition, layer: int) -> int:
    """The node of hidden ``layer`` whose spline has the most pieces (the most bends), for the 3-D view."""
    return max(range(partition.layer_sizes[layer]), key=lambda node: len(partition.spline_segments(layer, node)))


def draw_fig1a(partition, classes=(1, 0), width: float = 8.0):
    """Fig 1(a): one column per layer; top, the flat partition; bottom, the lifted 3-D view.

    Columns: hidden layer 1, hidden layer 2, the classifier. Top: new splines dark, earlier ones grey, the decision
    boundary blue. Bottom: the pre-activation of one node per hidden layer (:func:`widest_spline`) and the logit
    difference ``f_classes[0] - f_classes[1]`` lifted as exact affine pieces over the plane.

    Parameters
    ----------
    partition : Partition
        Of a network with a 2-D input, two hidden layers and two outputs.
    classes : pair of int
        The logit difference lifted in the last column.
    width : float
        Figure width in inches (8: the page's 800 px column).
    """
    n_hidden = len(partition.layer_sizes)
    if n_hidden != 2:
        raise ValueError(f"draw_fig1a draws a network with two hidden layers; this one has {n_hidden}")
    fig = plt.figure(figsize=(width, width * 0.74))
    names = ["layer 1", "layer 2", "layer 3 (classifier)"]
    for column, name in enumerate(names):
        plot.draw_layer_view(fig.add_subplot(2, 3, column + 1), partition, column, classes=classes, title=name)
        ax = fig.add_subplot(2, 3, column + 4, projection="3d")
        if column < n_hidden:
            node = widest_spline(partition, column)
            plot3d.draw_node_view(ax, partition, column, node)
            ax.set_title(f"$h_{{{column + 1},{node + 1}}}(x)$", pad=-4)
        else:
            plot3d.draw_output_view(ax, partition, classes=classes, boundary_colour=plot.SPLINE_BLUE)
            ax.set_title(f"$f_{classes[0]}(x) - f_{classes[1]}(x)$", pad=-4)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.95, bottom=0.0, wspace=0.08, hspace=0.02)
    return fig


def splines_in_domain(partition) -> list[list[int]]:
    """Per hidden layer, the nodes whose spline has at least one segment in the partition's domain."""
    return [[node for node in range(size) if len(partition.spline_segments(layer, node))]
            for layer, size in enumerate(partition.layer_sizes)]


def _spline_count(present: list[int], size: int) -> str:
    return f"{size} splines" if len(present) == size else f"{len(present)} of {size} splines"


def draw_fig8(partition, width: float = 8.0):
    """Fig 8: the network (top left) and, per hidden layer, its splines over the grey splines of earlier layers.

    Each layer's splines are drawn in :data:`spline_utils.plot.LAYER_COLOURS`; the first node of each layer whose
    spline is in the domain is black and linked to its node in the diagram. Titles count the splines that are in the
    domain (a node that is active, or inactive, on the whole domain draws none).
    """
    sizes = partition.layer_sizes
    present = splines_in_domain(partition)
    rows = (len(sizes) + 2) // 2
    fig = plt.figure(figsize=(width, width * 1.04 * rows / 2))
    ax_network = fig.add_subplot(rows, 2, 1)
    positions = plot.draw_network(ax_network, sizes, node_size=22)
    ax_network.set_title("-".join(map(str, [2, *sizes])) + " network")
    for layer in range(len(sizes)):
        title = f"layer {layer + 1}: {_spline_count(present[layer], sizes[layer])}"
        ax = plot.setup_axes(fig.add_subplot(rows, 2, layer + 2), partition.bounds, title)
        plot.draw_previous_splines(ax, partition, layer)
        plot.draw_layer_splines(ax, partition, layer, color=plot.LAYER_COLOURS[layer], linewidth=1.2)
        if present[layer]:
            node = present[layer][0]
            segments = partition.spline_segments(layer, node)
            plot.draw_segments(ax, segments, color="black", linewidth=2.2)
            plot.link_to_spline(fig, ax_network, positions[layer + 1][node], ax, segments)
    fig.tight_layout()
    return fig


def draw_node_frame(partition, layer: int, node: int, width: float = 8.0):
    """One frame of the Fig 8 slider: the node in the diagram (left) and its spline over the partition so far."""
    sizes = partition.layer_sizes
    fig, (ax_network, ax_partition) = plt.subplots(1, 2, figsize=(width, width * 0.51),
                                                   gridspec_kw={"width_ratios": [1, 1.05]})
    positions = plot.draw_network(ax_network, sizes, highlight=(layer, node), node_size=22)
    plot.setup_axes(ax_partition, partition.bounds, f"layer {layer + 1}, node {node + 1}")
    plot.draw_previous_splines(ax_partition, partition, layer)
    segments = partition.spline_segments(layer, node)
    plot.draw_segments(ax_partition, segments, color=plot.LAYER_COLOURS[layer], linewidth=2.4)
    plot.link_to_spline(fig, ax_network, positions[layer + 1][node], ax_partition, segments)
    fig.tight_layout()
    return fig


def constant_code_nodes(partition) -> list[tuple[int, int]]:
    """(layer, node) pairs whose activation code is the same in every region: their spline misses the domain."""
    offsets = np.cumsum([0, *partition.layer_sizes])
    codes = partition.codes
    return [(layer, node) for layer, size in enumerate(partition.layer_sizes) for node in range(size)
            if len(np.unique(codes[:, offsets[layer] + node])) == 1]
