"""Fig 11: a sawtooth that a 4-unit network can draw exactly, yet small networks rarely learn.

:func:`sawtooth_task`, the exact hand-built 4-unit network :func:`exact_sawtooth_net`, many one-hidden-layer nets
trained at once by :class:`ShallowEnsemble`, their 1-D partitions (:func:`knots`) and :func:`width_sweep`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from spline_utils.training.nets import seeded
from spline_utils.training.train import fit

#: The hand-built solution: ``sawtooth(x) = sum_k a_k relu(x - t_k)`` on [-1, 1], knots ``t_k``, slopes ``a_k``.
SAWTOOTH_KNOTS = (-1.0, -0.5, 0.0, 0.5)
SAWTOOTH_SLOPE_CHANGES = (2.0, -4.0, 4.0, -4.0)


def sawtooth(x: torch.Tensor) -> torch.Tensor:
    """The target: a sawtooth with two peaks on [-1, 1], 0 at -1, 0 and 1, peaks of height 1 at -0.5 and 0.5."""
    return sum(a * F.relu(x - t) for a, t in zip(SAWTOOTH_SLOPE_CHANGES, SAWTOOTH_KNOTS))


def sawtooth_task(n_samples: int = 101, dtype: torch.dtype = torch.float32):
    """``n_samples`` evenly spaced points on [-1, 1] and their sawtooth values.

    Returns
    -------
    x, y : torch.Tensor, shape (n_samples, 1) each
    """
    if n_samples < 2:
        raise ValueError(f"n_samples must be >= 2, got {n_samples}")
    x = torch.linspace(-1.0, 1.0, n_samples, dtype=dtype)[:, None]
    return x, sawtooth(x)


def exact_sawtooth_net(dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """A 1-4-1 ReLU network equal to :func:`sawtooth` on [-1, 1]: unit k is ``relu(x - t_k)``, weighted by ``a_k``."""
    net = nn.Sequential(nn.Linear(1, 4), nn.ReLU(), nn.Linear(4, 1)).to(dtype)
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[0].bias.copy_(-torch.tensor(SAWTOOTH_KNOTS, dtype=dtype))
        net[2].weight.copy_(torch.tensor([SAWTOOTH_SLOPE_CHANGES], dtype=dtype))
        net[2].bias.zero_()
    return net


class ShallowEnsemble(nn.Module):
    """``M`` independent one-hidden-layer ReLU nets ``1 -> width -> 1`` evaluated in one batched pass.

    Member ``m`` starts exactly as ``nn.Sequential(nn.Linear(1, width), nn.ReLU(), nn.Linear(width, 1))`` built
    after ``torch.manual_seed(seeds[m])``. Trained with :func:`ensemble_mse` (a sum over members) and an elementwise
    optimizer (SGD, Adam), every member follows the same trajectory it would follow alone.

    Parameters
    ----------
    width : int
    seeds : sequence of int, length M
    """

    def __init__(self, width: int, seeds: Sequence[int]):
        super().__init__()
        if width < 1 or not len(seeds):
            raise ValueError(f"need width >= 1 and at least one seed, got width={width}, seeds={seeds}")
        members = []
        for seed in seeds:
            with seeded(int(seed)):
                members.append(nn.Sequential(nn.Linear(1, width), nn.ReLU(), nn.Linear(width, 1)))
        self.width, self.seeds = int(width), [int(s) for s in seeds]
        self.w1 = nn.Parameter(torch.stack([m[0].weight[:, 0] for m in members]).detach())  # (M, width)
        self.b1 = nn.Parameter(torch.stack([m[0].bias for m in members]).detach())  # (M, width)
        self.w2 = nn.Parameter(torch.stack([m[2].weight[0] for m in members]).detach())  # (M, width)
        self.b2 = nn.Parameter(torch.stack([m[2].bias[0] for m in members]).detach())  # (M,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (n, 1) -> outputs (n, M), column m is member m."""
        hidden = F.relu(x[:, :, None] * self.w1[None] + self.b1[None])  # (n, M, width)
        return (hidden * self.w2[None]).sum(-1) + self.b2[None]

    def member(self, index: int) -> nn.Sequential:
        """Member ``index`` as a stand-alone ``nn.Sequential`` (a copy)."""
        net = nn.Sequential(nn.Linear(1, self.width), nn.ReLU(), nn.Linear(self.width, 1))
        with torch.no_grad():
            net[0].weight.copy_(self.w1[index][:, None])
            net[0].bias.copy_(self.b1[index])
            net[2].weight.copy_(self.w2[index][None])
            net[2].bias.fill_(float(self.b2[index]))
        return net


def ensemble_mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Sum over members of each member's mean squared error; ``outputs`` (n, M), ``targets`` (n, 1)."""
    return ((outputs - targets) ** 2).mean(dim=0).sum()


def width_sweep(widths: Sequence[int], seeds: Sequence[int], steps: int, lr: float = 0.01, n_samples: int = 101):
    """Train one ensemble per width on the sawtooth with full-batch Adam; return errors and the trained ensembles.

    Returns
    -------
    errors : ndarray, shape (len(widths), len(seeds))
        Final training mean squared error of every net.
    ensembles : dict of int -> ShallowEnsemble
    """
    x, y = sawtooth_task(n_samples)
    errors, ensembles = [], {}
    for width in widths:
        ensemble = ShallowEnsemble(width, seeds)
        fit(ensemble, x, y, epochs=steps, batch_size=len(x), optimizer=torch.optim.Adam(ensemble.parameters(), lr),
            loss_fn=ensemble_mse, seed=0)
        with torch.no_grad():
            errors.append(((ensemble(x) - y) ** 2).mean(dim=0).numpy())
        ensembles[int(width)] = ensemble
    return np.array(errors), ensembles


def knots(net: nn.Sequential, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    """The 1-D partition of a ``1 -> width -> 1`` ReLU net: sorted knots ``-b_k / w_k`` inside ``[low, high]``.

    Units with ``w_k = 0`` (constant) or a zero outgoing weight (no kink in the output) have no knot.
    """
    first, last = net[0], net[-1]
    if first.in_features != 1 or last.out_features != 1:
        raise ValueError("knots needs a 1 -> width -> 1 network (nn.Sequential(Linear(1, w), ReLU, Linear(w, 1)))")
    w, b = first.weight[:, 0].detach().double(), first.bias.detach().double()
    used = (w != 0) & (last.weight[0].detach() != 0)
    points = (-b[used] / w[used]).numpy()
    return np.sort(points[(points >= low) & (points <= high)])
