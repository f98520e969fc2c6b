"""Fig 6 (chapter 4): the spline pruning policy on a small 2-5-8-2 network, and what pruning it without retraining
keeps.

:func:`train_toy_net` trains the network; :func:`accuracy_keeping` and :func:`subset_accuracies` measure a pruned
layer without retraining (every choice of kept nodes, the oracle the criterion is judged against); the panels
:func:`draw_partition`, :func:`draw_distances` and :func:`draw_distance_matrix`; the figure :func:`fig6_figure` and
the two slider frames :func:`reference_frame` and :func:`threshold_frame`.
"""
from __future__ import annotations

import copy
import itertools

import matplotlib.colors
import matplotlib.patheffects
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn

from spline_utils import plot, pruning
from spline_utils.training import nets, train
from spline_utils.engine.partition import Partition

#: Distance to the reference spline: dark blue is close (redundant), light is far, as in the paper's Fig 6.
DISTANCE_CMAP = matplotlib.colors.LinearSegmentedColormap.from_list(
    "spline_distance", plt.get_cmap("Blues")(np.linspace(0.95, 0.25, 256)))
REFERENCE_GREEN = "#2ca02c"
_OUTLINE = [matplotlib.patheffects.withStroke(linewidth=2.5, foreground="white")]


def train_toy_net(widths, x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int) -> nn.Sequential:
    """``nets.mlp(widths, seed)`` trained as the chapter's Fig 6 network: SGD 0.05, momentum 0.9, batch 64."""
    net = nets.mlp(widths, seed=seed)
    train.fit(net, x, y, epochs=epochs, lr=0.05, momentum=0.9, batch_size=64, seed=seed)
    return net


def double_copy(net: nn.Sequential) -> nn.Sequential:
    """A float64 copy of ``net`` (for checks to round-off); ``net`` is unchanged."""
    return copy.deepcopy(net).double()


def prune_layer(net: nn.Sequential, layer: int, keep: np.ndarray) -> nn.Sequential:
    """``net`` with only the nodes ``keep`` (bool, one per node) of hidden layer ``layer`` (0-based); every other
    layer whole. A new network (``pruning.prune_nodes``)."""
    masks = [torch.ones(width, dtype=torch.bool) for width in pruning.layer_widths(net)]
    masks[layer] = torch.as_tensor(np.asarray(keep, dtype=bool))
    return pruning.prune_nodes(net, masks)


def accuracy_keeping(net: nn.Sequential, layer: int, keep: np.ndarray, x: torch.Tensor, y: torch.Tensor) -> float:
    """Test accuracy of ``net`` with only the nodes ``keep`` (bool, one per node) of hidden layer ``layer``
    (0-based), every other layer whole, no retraining."""
    return train.accuracy(prune_layer(net, layer, keep), x, y)


def subset_accuracies(net: nn.Sequential, layer: int, x: torch.Tensor, y: torch.Tensor) -> dict:
    """Accuracy without retraining of every non-empty choice of kept nodes of hidden layer ``layer``.

    Returns
    -------
    dict
        ``n -> (subsets, accuracies)``: ``subsets`` an int array (C(width, n), n) of kept node indices,
        ``accuracies`` a float array (C(width, n),), for n = 1, ..., width.
    """
    width = pruning.layer_widths(net)[layer]
    result = {}
    for n in range(1, width + 1):
        subsets = np.array(list(itertools.combinations(range(width), n)))
        result[n] = (subsets, np.array([accuracy_keeping(net, layer, np.isin(np.arange(width), subset), x, y)
                                        for subset in subsets]))
    return result


def draw_partition(ax, partition: Partition, bounds, title: str, colours=None, boundary: bool = True,
                   ghost: Partition | None = None) -> None:
    """Layer-1 lines black, layer-2 splines blue (or ``colours``, one per node), decision boundary dashed red.

    ``ghost``: a partition whose layer-2 splines are drawn first, dotted grey (e.g. the unpruned network's, to show
    what pruning removed).
    """
    plot.setup_axes(ax, bounds, title, ticks=True)
    if ghost is not None:
        plot.draw_layer_splines(ax, ghost, 1, color="0.6", linewidth=1.0, linestyles=":")
    plot.draw_layer_splines(ax, partition, 0, color="black", linewidth=1.2)
    width = partition.layers[1].num_nodes
    plot.draw_node_splines(ax, partition, 1, colours or [plot.SPLINE_BLUE] * width)
    if boundary:
        plot.draw_boundary(ax, partition, color=plot.BOUNDARY_RED, linewidth=1.4, linestyles="--")


def label_splines(ax, partition: Partition, layer: int, colours, nodes=None) -> None:
    """Write each node's index next to the middle of its longest spline piece (nodes whose spline misses the
    window get no label); :func:`finish` moves overlapping labels apart once the layout is final."""
    texts = []
    for node in range(partition.layers[layer].num_nodes) if nodes is None else nodes:
        segments = partition.spline_segments(layer, node)
        if len(segments) == 0:
            continue
        longest = segments[np.argmax(np.linalg.norm(segments[:, 1] - segments[:, 0], axis=1))]
        texts.append(ax.annotate(str(node), longest.mean(axis=0), xytext=(0, 0), textcoords="offset points",
                                 fontsize=10, fontweight="bold", color=colours[node], ha="center", va="center",
                                 path_effects=_OUTLINE))
    ax.node_labels = getattr(ax, "node_labels", []) + texts


def finish(fig):
    """Lay out ``fig`` (``tight_layout``), then move apart the node labels of each axes that overlap; returns
    ``fig``."""
    fig.tight_layout()
    for ax in fig.axes:
        separate_texts(ax, getattr(ax, "node_labels", []))
    return fig


def separate_texts(ax, texts, step: float = 11.0, tries: int = 8) -> None:
    """Move each annotation (placed with ``textcoords="offset points"``) down by ``step`` points until its box
    overlaps none of the earlier ones (at most ``tries`` times)."""
    renderer = ax.figure.canvas.get_renderer()
    placed = []
    for text in texts:
        x, y = text.xyann
        for _ in range(tries):
            box = text.get_window_extent(renderer).expanded(1.1, 1.1)
            if not any(box.overlaps(other) for other in placed):
                break
            y -= step
            text.xyann = (x, y)
        placed.append(text.get_window_extent(renderer))


def draw_distances(ax, partition: Partition, distance: np.ndarray, reference: int, bounds, title: str,
                   vmax: float) -> matplotlib.cm.ScalarMappable:
    """Layer-2 splines coloured by their distance ``distance[reference]`` on :data:`DISTANCE_CMAP` (0 to ``vmax``),
    the reference thick and green, each labelled with its node index; far splines drawn first.

    Returns the colour mapping, for a colourbar.
    """
    mapping = matplotlib.cm.ScalarMappable(matplotlib.colors.Normalize(0.0, vmax), DISTANCE_CMAP)
    colours = [REFERENCE_GREEN if node == reference else mapping.to_rgba(value)
               for node, value in enumerate(distance[reference])]
    plot.setup_axes(ax, bounds, title, ticks=True)
    plot.draw_layer_splines(ax, partition, 0, color="0.75", linewidth=0.8)
    order = [node for node in np.argsort(-distance[reference], kind="stable") if node != reference] + [reference]
    for node in order:
        plot.draw_segments(ax, partition.spline_segments(1, node), colours[node],
                           2.8 if node == reference else 1.8)
    label_splines(ax, partition, 1, colours)
    return mapping


def distance_colourbar(fig, ax, mapping, label: str = "spline distance N(k, k')"):
    """A horizontal colourbar under ``ax``."""
    bar = fig.colorbar(mapping, ax=ax, orientation="horizontal", fraction=0.05, pad=0.14, aspect=25)
    bar.set_label(label)
    return bar


def draw_distance_matrix(ax, distance: np.ndarray, groups: np.ndarray, threshold: float, vmax: float):
    """The layer's distance matrix with its nodes ordered by group, each group's block outlined in red.

    Single-linkage groups: a node joins a group when some member is within ``threshold``.
    """
    order = np.lexsort((np.arange(len(groups)), groups))
    image = ax.imshow(distance[np.ix_(order, order)], cmap=DISTANCE_CMAP, vmin=0.0, vmax=vmax)
    ax.set_xticks(range(len(order)), order)
    ax.set_yticks(range(len(order)), order)
    ax.set_xlabel("node k'")
    ax.set_ylabel("node k")
    start = 0
    for label in np.unique(groups[order]):
        size = int(np.sum(groups == label))
        ax.add_patch(plt.Rectangle((start - 0.5, start - 0.5), size, size, fill=False, edgecolor=plot.BOUNDARY_RED,
                                   linewidth=2))
        start += size
    ax.set_title(f"N(k, k'), {len(np.unique(groups))} groups at {threshold:.2f}")
    return image


def fig6_figure(partition: Partition, pruned: Partition, distance: np.ndarray, reference: int, groups: np.ndarray,
                threshold: float, bounds):
    """The paper's Fig 6 as four panels: (a) the partition, (b) distances to the reference spline, (c) the pruned
    partition, (d) the distance matrix and its groups (beyond the paper)."""
    vmax = float(distance.max())
    fig, axes = plt.subplots(2, 2, figsize=(8, 8.6))
    draw_partition(axes[0, 0], partition, bounds, r"(a) DN partition $\Omega$")
    mapping = draw_distances(axes[0, 1], partition, distance, reference, bounds,
                             f"(b) $N(k, k')$ to k = {reference} (green)", vmax)
    distance_colourbar(fig, axes[0, 1], mapping)
    kept = np.unique(groups).size
    draw_partition(axes[1, 0], pruned, bounds, rf"(c) pruned $\Omega$: {kept} of {len(groups)} kept",
                   ghost=partition)
    image = draw_distance_matrix(axes[1, 1], distance, groups, threshold, vmax)
    axes[1, 1].set_title(f"(d) {axes[1, 1].get_title()}")
    distance_colourbar(fig, axes[1, 1], image)
    return finish(fig)


def teaser_figure(partition: Partition, pruned: Partition, distance: np.ndarray, reference: int, bounds):
    """The paper's Fig 6 as one row of three small panels without ticks: partition, distances, pruned partition."""
    fig, axes = plt.subplots(1, 3, figsize=(8, 2.9))
    draw_partition(axes[0], partition, bounds, r"$\Omega$", boundary=False)
    draw_distances(axes[1], partition, distance, reference, bounds, "$N(k, k')$", float(distance.max()))
    draw_partition(axes[2], pruned, bounds, r"pruned $\Omega$", boundary=False)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return finish(fig)


def reference_frame(partition: Partition, parameter: np.ndarray, data: np.ndarray, reference: int, bounds,
                    threshold: float):
    """Slider frame: the layer-2 splines by parameter-space distance to ``reference`` (left), and each other
    node's distance to it in parameter space against data space (right), the nearest in each space marked."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 4.6), gridspec_kw=dict(width_ratios=(1, 1.1)))
    mapping = draw_distances(left, partition, parameter, reference, bounds, f"parameter space, k = {reference}",
                             float(parameter.max()))
    distance_colourbar(fig, left, mapping, "N(k, k'), parameter space")
    others = [node for node in range(len(parameter)) if node != reference]
    nearest_parameter = others[int(np.argmin(parameter[reference, others]))]
    nearest_data = others[int(np.argmin(data[reference, others]))]
    right.scatter(parameter[reference, others], data[reference, others],
                  c=[mapping.to_rgba(parameter[reference, node]) for node in others], s=60, edgecolor="black",
                  linewidth=0.6, zorder=3)
    labels = [right.annotate(str(node), (parameter[reference, node], data[reference, node]), xytext=(7, 4),
                             textcoords="offset points", fontsize=10) for node in others]
    for node, colour, size in ((nearest_parameter, plot.BOUNDARY_RED, 420), (nearest_data, "#e08a00", 200)):
        right.scatter(parameter[reference, node], data[reference, node], s=size, facecolor="none", edgecolor=colour,
                      linewidth=2, zorder=4)
    right.axvline(threshold, color="0.4", linestyle="--", linewidth=1)
    right.text(threshold, 0.98, " grouping\n threshold", transform=right.get_xaxis_transform(), va="top",
               fontsize=9, color="0.3")
    right.set(xlabel="parameter space N(k, k')", ylabel="data space: share of points\ncut differently",
              xlim=(0, 1.08 * parameter.max()), ylim=(0, max(0.05, 1.15 * data[reference, others].max())))
    right.node_labels = labels
    same = nearest_parameter == nearest_data
    right.set_title(f"nearest: {nearest_parameter} in both" if same else
                    f"nearest: {nearest_parameter} (parameter, red),\n{nearest_data} (data, orange)")
    right.grid(alpha=0.3)
    return finish(fig)


def threshold_frame(net_partition: Partition, full_partition: Partition, threshold: float, kept: np.ndarray,
                    accuracy: float, subsets: dict, grouped: dict, bounds):
    """Slider frame: the pruned partition at ``threshold`` (left, the removed splines dotted) and the accuracy
    without retraining against the number of layer-2 splines kept (right): the range over every choice of that many
    nodes (grey bar, dot: the mean), one spline per group (red line), this threshold's network (large red dot).

    ``subsets``: :func:`subset_accuracies`; ``grouped``: number of splines kept -> accuracy of one per group.
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 4.4), gridspec_kw=dict(width_ratios=(1, 1.1)))
    n_kept = int(np.sum(kept))
    draw_partition(left, net_partition, bounds, f"{n_kept} layer-2 spline{'s' if n_kept > 1 else ''} kept",
                   ghost=full_partition)
    counts = sorted(subsets)
    for n in counts:
        accuracies = subsets[n][1]
        right.plot([n, n], [accuracies.min(), accuracies.max()], color="0.6", linewidth=5, alpha=0.6,
                   solid_capstyle="butt")
        right.plot(n, accuracies.mean(), "o", color="0.35", markersize=4)
    right.plot(sorted(grouped), [grouped[n] for n in sorted(grouped)], "-", color=plot.BOUNDARY_RED, linewidth=1.5)
    right.plot(n_kept, accuracy, "o", color=plot.BOUNDARY_RED, markersize=10)
    right.set(xlabel="layer-2 splines kept", ylabel="test accuracy, no retraining", xticks=counts,
              title=f"threshold {threshold:.2f}: accuracy {accuracy:.3f}")
    right.plot([], [], color="0.6", linewidth=5, alpha=0.6, label="every choice of n nodes")
    right.plot([], [], "-o", color=plot.BOUNDARY_RED, label="one per group")
    right.legend(loc="lower right", fontsize=9)
    right.grid(alpha=0.3)
    return finish(fig)
