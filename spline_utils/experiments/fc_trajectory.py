"""The spline trajectory of the small fully connected network on the X task (the paper's Figs 4(a) and 14).

:func:`train_fcnet` trains the 2-20-2 FCNet with plain SGD and keeps copies of its weights at chosen iterations;
:func:`distances_to_final` measures how far each copy's partition is from the final network's on a probe set;
:func:`fc_trajectory_figure` draws the loss curve over one exact-partition panel per copy.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn

from spline_utils import plot
from spline_utils.early_bird import codes
from spline_utils.plot import training as plot_training
from spline_utils.training import nets, train
from spline_utils.engine.partition2d import partition2d

FC_WIDTHS = (2, 20, 2)


@dataclass
class FCTrajectory:
    """One FCNet training run with weight copies.

    Attributes
    ----------
    model : nn.Sequential
        The network after the last step.
    snapshots : train.Snapshots
        ``snapshots.at_iteration[i]``: the ``state_dict`` after ``i`` SGD steps.
    state : train.TrainState
        The loss of every step (``state.losses``) and epoch (``state.epoch_losses``), the step count.
    activation : str
    negative_slope : float
    """

    model: nn.Sequential
    snapshots: train.Snapshots
    state: train.TrainState
    activation: str
    negative_slope: float

    @property
    def iterations(self) -> list[int]:
        """The iterations of the copies, in order."""
        return sorted(self.snapshots.at_iteration)

    def at(self, iteration: int) -> nn.Sequential:
        """A fresh FCNet with the weights after ``iteration`` steps."""
        if iteration not in self.snapshots.at_iteration:
            raise ValueError(f"no copy after {iteration} steps; copies exist after {self.iterations}")
        net = nets.mlp(FC_WIDTHS, activation=self.activation, negative_slope=self.negative_slope)
        net.load_state_dict(self.snapshots.at_iteration[iteration])
        return net


def train_fcnet(x: torch.Tensor, y: torch.Tensor, iterations: int, snapshot_iterations: Sequence[int],
                activation: str = "relu", negative_slope: float = 0.1, lr: float = 0.01, batch_size: int = 64,
                seed: int = 0) -> FCTrajectory:
    """Train the 2-20-2 FCNet with plain SGD for at least ``iterations`` steps (whole epochs), copying its weights.

    Parameters
    ----------
    x : torch.Tensor, shape (n, 2)
    y : torch.Tensor of int64, shape (n,)
    iterations : int
        SGD steps; rounded up to whole epochs of ``ceil(n / batch_size)`` steps.
    snapshot_iterations : sequence of int
        Steps after which to copy the weights (each at most the number of steps run).
    activation : {"relu", "leaky_relu"}
    negative_slope : float
        Slope of the leaky ReLU.
    lr, batch_size : SGD settings.
    seed : int
        Initialization and batch order.
    """
    epochs = -(-iterations * batch_size // len(x))
    steps = epochs * -(-len(x) // batch_size)
    if any(not 0 <= int(i) <= steps for i in snapshot_iterations):
        raise ValueError(f"snapshot iterations must lie in [0, {steps}] (the steps run); got {snapshot_iterations}")
    net = nets.mlp(FC_WIDTHS, activation=activation, negative_slope=negative_slope, seed=seed)
    snapshots = train.Snapshots(iterations=snapshot_iterations)
    state = train.fit(net, x, y, epochs=epochs, lr=lr, batch_size=batch_size, callbacks=[snapshots], seed=seed)
    return FCTrajectory(net, snapshots, state, activation, negative_slope)


def distances_to_final(run: FCTrajectory, probe: torch.Tensor) -> list[float]:
    """Normalized Hamming distance of each copy's codes on ``probe`` to the final network's, in iteration order."""
    final = codes.probe_codes(run.model, probe)
    return [codes.network_distance(codes.probe_codes(run.at(iteration), probe), final)
            for iteration in run.iterations]


def fc_trajectory_figure(run: FCTrajectory, window, title: str) -> plt.Figure:
    """Figs 4(a)/14: the mini-batch loss (light), its mean over one epoch, and one panel per copy and the final net.

    Each panel is the exact partition of ``window`` (xmin, xmax, ymin, ymax): the copy's first-layer splines (blue)
    and its decision boundary {f_0 = f_1} (red), over the final network's splines (grey bands) and boundary (pink).
    """
    losses = np.asarray(run.state.losses)
    steps = np.arange(1, len(losses) + 1)
    per_epoch = len(losses) // len(run.state.epoch_losses)
    epoch_mean = np.convolve(losses, np.ones(per_epoch) / per_epoch, mode="valid")
    models = [run.at(iteration) for iteration in run.iterations] + [run.model]
    final = partition2d(run.model, window)
    fig = plt.figure(figsize=(9.2, 9.6))
    loss_ax, _ = plot_training.draw_loss_trajectory(
        fig, steps[per_epoch - 1:], epoch_mean, [*run.iterations, run.state.iteration],
        lambda ax, i: plot_training.draw_snapshot_splines(ax, partition2d(models[i], window), final),
        [f"iteration {iteration}" for iteration in run.iterations] + [f"final ({run.state.iteration})"],
        noisy=(steps, losses), label="mean over an epoch", noisy_label="mini-batch loss")
    plot_training.snapshot_legend(loss_ax, ["first-layer splines"], [plot.SPLINE_BLUE])
    loss_ax.set(xlabel="Iterations", ylabel="Loss", title=title)
    return fig
