"""Restarts of a small MLP, trained at once: the control for "reliability bought with compute" in Fig 9.

:class:`MLPEnsemble` holds independent MLPs (one per seed) in one batched model, :func:`ensemble_loss` trains each
as if alone, and :func:`best_of_restarts` keeps the restart that does best on validation data.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from spline_utils.training.nets import mlp
from spline_utils.training.train import Callback, TrainState, fit


def _linear_layers(model: nn.Sequential) -> list[nn.Linear]:
    return [module for module in model if isinstance(module, nn.Linear)]


class MLPEnsemble(nn.Module):
    """Independent MLPs ``nets.mlp(widths, seed=s)``, one per seed, evaluated in one batched forward pass.

    Member ``r`` starts from exactly the weights of ``nets.mlp(widths, seed=seeds[r])``; trained with
    :data:`ensemble_loss` (the sum of the members' mean losses) each member gets exactly the gradient it would get
    alone, so the members are restarts of the small network that share only the batch order.

    Parameters
    ----------
    widths : sequence of int
        The MLP, input first.
    seeds : sequence of int
        One initialization seed per member.
    """

    def __init__(self, widths: Sequence[int], seeds: Sequence[int]):
        super().__init__()
        members = [_linear_layers(mlp(widths, seed=seed)) for seed in seeds]
        self.seeds = list(seeds)
        self.weights = nn.ParameterList(  # (members, in, out) per layer
            nn.Parameter(torch.stack([layers[i].weight.detach().T for layers in members]))
            for i in range(len(widths) - 1))
        self.biases = nn.ParameterList(  # (members, 1, out)
            nn.Parameter(torch.stack([layers[i].bias.detach()[None] for layers in members]))
            for i in range(len(widths) - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` of shape (n, widths[0]) -> outputs of shape (members, n, widths[-1])."""
        h = x[None]
        for index, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            h = torch.matmul(h, weight) + bias
            if index < len(self.weights) - 1:
                h = torch.relu(h)
        return h

    def accuracies(self, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
        """Each member's accuracy on ``(x, y)``, shape (members,)."""
        with torch.no_grad():
            return (self(x).argmax(-1) == y).double().mean(1).numpy()


def ensemble_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The sum over members of each member's mean cross-entropy; ``outputs`` (members, n, classes)."""
    members, n, classes = outputs.shape
    return F.cross_entropy(outputs.reshape(members * n, classes), targets.repeat(members), reduction="sum") / n


class _MemberAccuracies(Callback):
    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y, self.history = x, y, []

    def on_epoch_end(self, state: TrainState) -> None:
        self.history.append(state.model.accuracies(self.x, self.y))


def best_of_restarts(widths: Sequence[int], data: tuple, restarts: int, epochs: int, seed: int = 0,
                     lr: float = 0.05, momentum: float = 0.9, batch_size: int = 64) -> tuple[int, np.ndarray]:
    """Train ``restarts`` randomly initialized copies of the MLP ``widths`` and pick the best on validation data.

    Restart ``r`` is ``nets.mlp(widths, seed=seed + 1000 * r)`` (restart 0 is the random start of the same seed)
    trained ``epochs`` epochs with SGD; all share the batch order of ``seed``.

    Parameters
    ----------
    data : tuple
        ``(x_train, y_train, x_validation, y_validation, x_test, y_test)``.

    Returns
    -------
    picked : int
        The restart with the best validation accuracy (the first of equals).
    test_curve : ndarray, shape (epochs,)
        Its test accuracy after every epoch.
    """
    x_train, y_train, x_validation, y_validation, x_test, y_test = data
    if restarts < 1:
        raise ValueError(f"need at least one restart, got {restarts}")
    ensemble = MLPEnsemble(widths, [seed + 1000 * r for r in range(restarts)])
    test = _MemberAccuracies(x_test, y_test)
    fit(ensemble, x_train, y_train, epochs, lr=lr, momentum=momentum, batch_size=batch_size, seed=seed,
        loss_fn=ensemble_loss, callbacks=[test])
    picked = int(np.argmax(ensemble.accuracies(x_validation, y_validation)))
    return picked, np.array([accuracies[picked] for accuracies in test.history])
