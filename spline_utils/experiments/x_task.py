"""Chapter 2's Fig 2: a 2-20-2 network on the X-shaped task, pruned by row norm, rewound and retrained.

Panels of first-layer splines (blue) and the decision boundary (red) with its turning points (black dots), the
slider frame that replays the pruned network's retraining, and the live pruned-versus-scratch comparison.
"""
from __future__ import annotations

import matplotlib.pyplot as plt

from spline_utils import plot, pruning
from spline_utils.training import train
from spline_utils.training.nets import mlp
from spline_utils.engine.partition2d import partition2d
from spline_utils.experiments.spline_vertices import BoundaryBends

PAPER_WINDOW = (-2.0, 2.0, -2.0, 2.0)  # the authors' view of Fig 2
DATA_WINDOW = (-5.0, 5.0, -5.0, 5.0)   # where the data lie


def turning_points(model, bounds=PAPER_WINDOW) -> BoundaryBends:
    """The decision boundary's vertices in ``bounds`` and the first-layer lines through them."""
    return BoundaryBends(partition2d(model, bounds), model)


def draw_panel(ax, model, bounds, title=None, bends: bool = True):
    """One panel: first-layer splines blue, decision boundary red, its turning points as black dots."""
    partition = partition2d(model, bounds)
    plot.setup_axes(ax, bounds, title)
    plot.draw_layer_splines(ax, partition, 0, color=plot.SPLINE_BLUE, linewidth=1.6)
    plot.draw_boundary(ax, partition, color=plot.BOUNDARY_RED, linewidth=2.4)
    if bends:
        vertices = BoundaryBends(partition, model).vertices
        if len(vertices):
            ax.scatter(*vertices.T, s=16, color="black", zorder=5)
    return partition


def draw_fig2(models, labels, footers, windows=(PAPER_WINDOW, DATA_WINDOW), width: float = 8.0):
    """Columns of panels (one per model), one row per window, ``width`` inches wide."""
    columns = len(models)
    fig, axes = plt.subplots(len(windows), columns, figsize=(width, width / max(columns, 2) * len(windows) + 0.7),
                             squeeze=False)
    for column, (model, label, footer) in enumerate(zip(models, labels, footers)):
        for row, window in enumerate(windows):
            draw_panel(axes[row, column], model, window, label if row == 0 else None)
        axes[-1, column].set_xlabel(footer)
    axes[0, 0].set_ylabel("$[-2, 2]^2$ (paper)")
    axes[-1, 0].set_ylabel("data $[-5, 5]^2$")
    fig.tight_layout()
    return fig


def draw_replay_frame(model, state: dict, epoch: int, accuracy: float, width: float = 8.0):
    """One slider frame: ``model`` loaded with ``state`` (its weights at ``epoch`` of retraining), both windows."""
    model.load_state_dict(state)
    fig, axes = plt.subplots(1, 2, figsize=(width, width * 0.54))
    for ax, window in zip(axes, (PAPER_WINDOW, DATA_WINDOW)):
        draw_panel(ax, model, window)
        ax.set_xlabel(f"window $[{window[0]:.0f}, {window[1]:.0f}]^2$")
    fig.suptitle(f"{pruning.layer_widths(model)[0]} hidden units, retraining epoch {epoch}: "
                 f"test accuracy {accuracy:.3f}")
    fig.tight_layout()
    return fig


def pruned_versus_scratch(units: int, dense, initial, data, epochs: int, batch_size: int, seed: int):
    """The dense network pruned to ``units`` hidden units and rewound, next to that width trained from scratch.

    Both train ``epochs`` epochs with momentum 0.9 and learning rate 0.05 (a fast live recipe).

    Parameters
    ----------
    dense, initial : nn.Sequential
        The trained 2-20-2 network and a copy of it before training (for rewinding).
    data : tuple (x_train, y_train, x_test, y_test)
    """
    x_train, y_train, x_test, y_test = data
    masks = pruning.select_nodes(pruning.node_scores(dense, "magnitude"), keep=[units])
    ticket = pruning.rewind(pruning.prune_nodes(dense, masks), initial, masks)
    scratch = mlp((2, units, 2), seed=seed + 100)
    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.5))
    for ax, model, title in ((axes[0], ticket, "pruned, rewound"), (axes[1], scratch, "from scratch")):
        train.fit(model, x_train, y_train, epochs=epochs, lr=0.05, momentum=0.9, batch_size=batch_size, seed=seed)
        draw_panel(ax, model, DATA_WINDOW, f"{title}: {units} units", bends=False)
        ax.set_xlabel(f"test acc. {train.accuracy(model, x_test, y_test):.3f}")
    fig.tight_layout()
    return fig
